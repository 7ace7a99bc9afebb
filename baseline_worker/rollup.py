"""Which scored transactions feed the baselines: the domain rule the rollup trigger applies.

Every transaction except those judged `high` or `critical`, so that an outlier never widens
(or fattens the tail of) the baseline it is judged against. `medium` rows stay in: leaving
them out too trimmed the top of every distribution, and the next baseline then flagged more
(docs/accuracy.md). The SQL trigger (ops/migrations/005, 007) says the same as
`WHERE severity IS NULL OR severity = 'medium'`; tests/integration/test_baselines.py checks
that the two agree on the same rows.
"""

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from functools import lru_cache

from baseline_worker.compute import OPEN_DAYS, ScopeStats, window_days
from baseline_worker.histogram import bin_of_log
from baseline_worker.stats import (
    HOURS,
    DayMedians,
    DayWeights,
    HourLevels,
    Moments,
    WeekdayLevels,
    day_log_median,
)
from schemas import BaselineScope, ScopeKind, Severity, Transaction

_LEFT_OUT: frozenset[Severity] = frozenset(("high", "critical"))


def feeds_baseline(severity: Severity | None) -> bool:
    return severity not in _LEFT_OUT


def scopes_of(txn: Transaction) -> tuple[BaselineScope, BaselineScope]:
    """The two scopes a transaction feeds: its category and its merchant, in its currency."""
    return _scopes(txn.category, txn.merchant, txn.currency)


@lru_cache(maxsize=65_536)
def _scopes(category: str, merchant: str, currency: str) -> tuple[BaselineScope, BaselineScope]:
    # Cached: a replay looks up the same few thousand scopes millions of times.
    return (
        BaselineScope(kind=ScopeKind.CATEGORY, name=category, currency=currency),
        BaselineScope(kind=ScopeKind.MERCHANT, name=merchant, currency=currency),
    )


@dataclass(slots=True)
class _Day:
    """One scope's day as rows arrive: integer sums (amounts in 1/10,000, as NUMERIC(18,4)
    stores them), so adding a row is a few exact integer operations, and its histogram."""

    count: int = 0
    total: int = 0
    total_sq: int = 0
    log_total: float = 0.0
    log_total_sq: float = 0.0
    bins: Counter[int] = field(default_factory=Counter)
    hour_counts: list[int] = field(default_factory=lambda: [0] * HOURS)
    hour_log_totals: list[float] = field(default_factory=lambda: [0.0] * HOURS)
    # The median of ln(amount), once asked for (a closed day's rows no longer change).
    median: float | None = None

    def add(self, scaled: int, log_amount: float, bin_index: int, hour: int) -> None:
        self.median = None
        self.count += 1
        self.hour_counts[hour] += 1
        self.hour_log_totals[hour] += log_amount
        self.total += scaled
        self.total_sq += scaled * scaled
        self.log_total += log_amount
        self.log_total_sq += log_amount * log_amount
        self.bins[bin_index] += 1

    def moments(self) -> Moments:
        with localcontext(prec=80):
            return Moments(
                self.count,
                Decimal(self.total).scaleb(-4),
                Decimal(self.total_sq).scaleb(-8),
                self.log_total,
                self.log_total_sq,
            )

    def log_median(self) -> float:
        if self.median is None:
            self.median = day_log_median(self.bins)
        return self.median


@dataclass
class _DayScope:
    moments: Moments = field(default_factory=Moments)
    bins: Counter[int] = field(default_factory=Counter)
    weights: DayWeights = field(default_factory=DayWeights)
    hours: HourLevels = field(default_factory=HourLevels)
    weekdays: WeekdayLevels = field(default_factory=WeekdayLevels)
    medians: DayMedians = field(default_factory=DayMedians)
    closed_medians: list[DayMedians] = field(default_factory=list)

    def add_day(self, day: _Day, day_index: int, closed: bool, weekday: int = 0) -> None:
        """Add one day of the window (its `weekday`, 0 for Monday); its hours, its weekday
        and its median only once it is closed, as the SQL keeps them (`baseline_window_hours`,
        `baseline_window_weekdays`, `baseline_window_medians`, ops/migrations/016, 018 and
        019: summed once a day)."""
        moments = day.moments()
        self.moments += moments
        if closed:
            self.hours += HourLevels(tuple(day.hour_counts), tuple(day.hour_log_totals))
            self.weekdays += WeekdayLevels.of_weekdays(
                [weekday], [day.count], [day.log_total], [day.count * day_index]
            )
            median = DayMedians.of_day(day_index, day.count, day.log_median())
            self.medians += median
            self.closed_medians.append(median)
        self.bins.update(day.bins)
        self.weights += DayWeights.of(day_index, moments)


class MemoryRollup:
    """`baseline_rollup` and `baseline_rollup_bins` in memory, for event-time replays
    (the accuracy benchmark, `jalytics-backtest`): per UTC day of `transaction_date` and
    scope, the moments and the amount histogram of the rows that feed baselines; and, like
    `baseline_window_hours`, `baseline_window_weekdays` and `baseline_window_medians`, the
    hours of day, the weekdays and the days' medians of the window's closed days only."""

    def __init__(self, window_days: int) -> None:
        self._window = window_days
        self._days: defaultdict[date, dict[BaselineScope, _Day]] = defaultdict(dict)
        # The window's closed days summed, for the day it was made for: a replay runs in
        # time order, so only today changes between two recomputes of the same day.
        self._closed: tuple[date, dict[BaselineScope, _DayScope]] | None = None

    def add(self, txn: Transaction) -> None:
        at = txn.transaction_date.astimezone(UTC)
        day = at.date()
        if self._closed is not None and day < self._closed[0]:
            self._closed = None  # a late row changed a closed day
        # ln(amount) once: math.log of a Decimal is that of float(amount), as bin_of takes it.
        log_amount = math.log(float(txn.amount))
        scaled, bin_index = int(txn.amount * 10_000), bin_of_log(log_amount)
        rows = self._days[day]
        for scope in scopes_of(txn):
            entry = rows.get(scope)
            if entry is None:
                entry = rows[scope] = _Day()
            entry.add(scaled, log_amount, bin_index, at.hour)

    def window(self, now: datetime) -> "RollupWindow":
        """What a recompute at `now` aggregates (baseline_worker.compute.aggregate)."""
        first, today = window_days(now, self._window)
        if self._closed is None or self._closed[0] != today:
            closed: dict[BaselineScope, _DayScope] = {}
            hours_last = today - timedelta(days=OPEN_DAYS)
            for day in (d for d in self._days if first <= d < today):
                for scope, entry in self._days[day].items():
                    closed.setdefault(scope, _DayScope()).add_day(
                        entry, (day - first).days, day <= hours_last, day.weekday()
                    )
            self._closed = (today, closed)
        # A copy of today: its rows go on growing after this recompute.
        partial: dict[BaselineScope, _DayScope] = {}
        for scope, entry in self._days.get(today, {}).items():
            partial[scope] = _DayScope()
            partial[scope].add_day(entry, (today - first).days, closed=False)
        return RollupWindow(self._closed[1], partial)


class RollupWindow:
    """One recompute's view of the rollup; each scope is summed when first asked for."""

    def __init__(
        self, closed: dict[BaselineScope, _DayScope], today: dict[BaselineScope, _DayScope]
    ) -> None:
        self._closed, self._today = closed, today

    def scopes(self) -> set[BaselineScope]:
        return {*self._closed, *self._today}

    def stats(self, scope: BaselineScope, with_bins: bool = True) -> ScopeStats | None:
        """The scope's window; without its histogram when `with_bins` is false (summing the
        histogram is most of the cost, and a replay reuses a tail fitted earlier)."""
        parts = [p for p in (self._closed.get(scope), self._today.get(scope)) if p is not None]
        if not parts:
            return None
        moments, weights, hours, weekdays = Moments(), DayWeights(), HourLevels(), WeekdayLevels()
        medians, bins = DayMedians(), Counter[int]()
        for part in parts:
            moments += part.moments
            weights += part.weights
            hours += part.hours
            weekdays += part.weekdays
            medians += part.medians
            if with_bins:
                bins.update(part.bins)
        if not moments.count:
            return None
        closed = self._closed.get(scope)
        days = () if closed is None else tuple(closed.closed_medians)
        return ScopeStats(scope, moments, bins, weights, hours, weekdays, medians, days)

    def bins(self, scope: BaselineScope) -> Counter[int]:
        """The scope's window histogram alone (what `stats` adds to a scope's moments): a
        replay that already holds the moments reads it only when it refits the tail."""
        bins: Counter[int] = Counter()
        for part in (self._closed.get(scope), self._today.get(scope)):
            if part is not None:
                bins.update(part.bins)
        return bins
