"""Which scored transactions feed the baselines: the domain rule the rollup trigger applies.

Every transaction except those judged `high` or `critical`, so that an outlier never widens
(or fattens the tail of) the baseline it is judged against. `medium` rows stay in: leaving
them out too trimmed the top of every distribution, and the next baseline then flagged more
(docs/accuracy.md). The SQL trigger (ops/migrations/005, 007, 015) and the closed days' hours
(016) say the same as `WHERE severity IS NULL OR severity = 'medium'`;
tests/integration/test_baselines.py checks that the two agree on the same rows (each with
its rule and z-equivalent, so that an edge on one side only fails it). A separate edge for
the `tail` rule's high rows (`tail_exclusion_z`) is a replay setting: round 10 measured it
and production keeps every high row out (`TAIL_EXCLUSION_Z = None`).
"""

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from functools import lru_cache

from baseline_worker.compute import (
    OPEN_DAYS,
    RecurringPrice,
    ScopeStats,
    recurs_as_price,
    unjudged_top,
    window_days,
    with_recurring_prices,
)
from baseline_worker.histogram import bin_of, bin_of_log
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
from schemas.verdict import Rule

_LEFT_OUT: frozenset[Severity] = frozenset(("high", "critical"))
# Where a row judged high or critical by the `tail` rule starts to stay out: None, every such
# row (the edge is then the alert's own). A z-equivalent past the high tier would let a tail's
# own rare normal amounts feed it (docs/accuracy.md, "Round 10"); the other rules' high rows
# (a fixed price's jump, the seed's z-scores) stay out whatever their z.
TAIL_EXCLUSION_Z: float | None = None


def feeds_baseline(
    severity: Severity | None,
    rule: Rule | None = None,
    z_score: float | None = None,
    tail_exclusion_z: float | None = TAIL_EXCLUSION_Z,
) -> bool:
    """Whether a row judged `severity` by `rule` at `z_score` feeds the baselines."""
    if severity not in _LEFT_OUT:
        return True
    return (
        tail_exclusion_z is not None
        and rule == "tail"
        and z_score is not None
        and z_score < tail_exclusion_z
    )


def kept_as_price(severity: Severity | None, rule: Rule | None) -> bool:
    """Whether a row kept out of the baselines may yet count as a price of its scope, should
    its amount recur (`compute.with_recurring_prices`; ops/migrations/022's WHERE): any
    rule's, since the top of a tail can be a price too (a toll's 4x vehicle class)."""
    return severity in _LEFT_OUT


def scopes_of(txn: Transaction) -> tuple[BaselineScope, BaselineScope]:
    """The two scopes a transaction feeds: its category and its merchant, in its currency."""
    return _scopes(txn.category, txn.merchant, txn.currency)


@lru_cache(maxsize=65_536)
def _scopes(category: str, merchant: str, currency: str) -> tuple[BaselineScope, BaselineScope]:
    # Cached: a replay looks up the same few thousand scopes millions of times.
    return scope_of(ScopeKind.CATEGORY, category, currency), scope_of(
        ScopeKind.MERCHANT, merchant, currency
    )


@lru_cache(maxsize=65_536)
def scope_of(kind: ScopeKind, name: str, currency: str) -> BaselineScope:
    """One model per scope: a dictionary keyed by scopes then finds each by identity, where
    two equal models would be compared field by field on every look-up."""
    return BaselineScope(kind=kind, name=name, currency=currency)


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
    # The median of ln(amount) and the moments, once asked for (a closed day's rows no
    # longer change, and each closed day is in the windows of 30 days).
    median: float | None = None
    summed: Moments | None = None
    # Held by a window (which reads the day without copying it): a row added later goes to
    # a copy instead (`MemoryRollup.add`), so that the window keeps its snapshot.
    shared: bool = False

    def add(self, scaled: int, log_amount: float, bin_index: int, hour: int) -> None:
        self.median = self.summed = None
        self.count += 1
        self.hour_counts[hour] += 1
        self.hour_log_totals[hour] += log_amount
        self.total += scaled
        self.total_sq += scaled * scaled
        self.log_total += log_amount
        self.log_total_sq += log_amount * log_amount
        self.bins[bin_index] += 1

    def copy(self) -> "_Day":
        return _Day(
            self.count,
            self.total,
            self.total_sq,
            self.log_total,
            self.log_total_sq,
            Counter(self.bins),
            list(self.hour_counts),
            list(self.hour_log_totals),
            self.median,
            self.summed,
        )

    def moments(self) -> Moments:
        if self.summed is None:
            with localcontext(prec=80):
                self.summed = Moments(
                    self.count,
                    Decimal(self.total).scaleb(-4),
                    Decimal(self.total_sq).scaleb(-8),
                    self.log_total,
                    self.log_total_sq,
                )
        return self.summed

    def log_median(self) -> float:
        if self.median is None:
            self.median = day_log_median(self.bins)
        return self.median


# A scope's window as `RollupWindow.stats` sums it: moments, day weights, hours, weekdays,
# days' medians.
_Sums = tuple[Moments, DayWeights, HourLevels, WeekdayLevels, DayMedians]


@dataclass
class _DayScope:
    moments: Moments = field(default_factory=Moments)
    weights: DayWeights = field(default_factory=DayWeights)
    hours: HourLevels = field(default_factory=HourLevels)
    weekdays: WeekdayLevels = field(default_factory=WeekdayLevels)
    medians: DayMedians = field(default_factory=DayMedians)
    closed_medians: list[DayMedians] = field(default_factory=list)
    # The days' histograms, summed when asked for (only a tail fit reads them).
    day_bins: list[Counter[int]] = field(default_factory=list)
    _bins: Counter[int] | None = None
    _sums: _Sums | None = None
    _open_levels: tuple[HourLevels, WeekdayLevels, DayMedians] | None = None

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
        self.day_bins.append(day.bins)
        self.weights += DayWeights.of(day_index, moments)

    @property
    def bins(self) -> Counter[int]:
        if self._bins is None:
            self._bins = Counter()
            for bins in self.day_bins:
                self._bins.update(bins)
        return self._bins

    def sums(self) -> _Sums:
        """This part added to empty sums, as `RollupWindow.stats` starts; kept, since the
        closed days' part is the same in every recompute of a day."""
        if self._sums is None:
            self._sums = (
                Moments() + self.moments,
                DayWeights() + self.weights,
                HourLevels() + self.hours,
                WeekdayLevels() + self.weekdays,
                DayMedians() + self.medians,
            )
        return self._sums

    def with_open_day(self, day: "_DayScope") -> _Sums:
        """`sums` with an open day's part added (`day`: a part of one open day only, whose
        hours, weekday and median are not yet counted, so the levels and medians added are
        the same all day: kept)."""
        if self._open_levels is None:
            _, _, hours, weekdays, medians = self.sums()
            self._open_levels = (hours + day.hours, weekdays + day.weekdays, medians + day.medians)
        moments, weights = self.sums()[:2]
        return moments + day.moments, weights + day.weights, *self._open_levels


class MemoryRollup:
    """`baseline_rollup` and `baseline_rollup_bins` in memory, for event-time replays
    (the accuracy benchmark, `jalytics-backtest`): per UTC day of `transaction_date` and
    scope, the moments and the amount histogram of the rows that feed baselines; and, like
    `baseline_window_hours`, `baseline_window_weekdays` and `baseline_window_medians`, the
    hours of day, the weekdays and the days' medians of the window's closed days only."""

    def __init__(self, window_days: int) -> None:
        self._window = window_days
        self._days: defaultdict[date, dict[BaselineScope, _Day]] = defaultdict(dict)
        # The rows `kept_as_price` names, per day and scope: their amounts.
        self._kept: defaultdict[date, defaultdict[BaselineScope, Counter[Decimal]]] = defaultdict(
            lambda: defaultdict(Counter)
        )
        # The rows fed without a verdict (scored while no baseline existed), per day and
        # scope: their amounts (`ScopeStats.unjudged`, ops/migrations/023).
        self._unjudged: defaultdict[date, defaultdict[BaselineScope, Counter[Decimal]]] = (
            defaultdict(lambda: defaultdict(Counter))
        )
        # The window's closed days summed, for the day it was made for: a replay runs in
        # time order, so only today changes between two recomputes of the same day.
        self._closed: tuple[date, dict[BaselineScope, _DayScope]] | None = None
        # Each merchant's category, as `merchant_categories` keeps it (ops/migrations/025):
        # that of its latest row that fed the baselines; and each category's merchants.
        self._categories = MerchantCategories()

    def add(self, txn: Transaction, unjudged: bool = False) -> None:
        """A row that feeds the baselines; `unjudged`: scored while no baseline existed."""
        at = txn.transaction_date.astimezone(UTC)
        day = at.date()
        if self._closed is not None and day < self._closed[0]:
            self._closed = None  # a late row changed a closed day
        # ln(amount) once: math.log of a Decimal is that of float(amount), as bin_of takes it.
        log_amount = math.log(float(txn.amount))
        scaled, bin_index = int(txn.amount * 10_000), bin_of_log(log_amount)
        self._categories.add(txn.merchant, txn.currency, txn.category)
        rows = self._days[day]
        for scope in scopes_of(txn):
            entry = rows.get(scope)
            if entry is None:
                entry = rows[scope] = _Day()
            elif entry.shared:
                entry = rows[scope] = entry.copy()
            entry.add(scaled, log_amount, bin_index, at.hour)
        if unjudged:
            by_scope = self._unjudged[day]
            for scope in scopes_of(txn):
                by_scope[scope][txn.amount] += 1

    def keep_out(self, txn: Transaction) -> None:
        """A row kept out of the baselines that may yet count as a price (`kept_as_price`)."""
        kept = self._kept[txn.transaction_date.astimezone(UTC).date()]
        for scope in scopes_of(txn):
            kept[scope][txn.amount] += 1

    def _recurring(self, first: date, last: date) -> dict[BaselineScope, list[RecurringPrice]]:
        """What ops/migrations/022's `baseline_recurring_kept_prices` reads over the window
        (no alert is ever resolved here: the replays have no analysts)."""
        sums: defaultdict[tuple[BaselineScope, Decimal], list[int]] = defaultdict(lambda: [0, 0, 0])
        for day, scopes in self._kept.items():
            if first <= day <= last:
                index = (day - first).days
                for scope, amounts in scopes.items():
                    for amount, count in amounts.items():
                        found = sums[scope, amount]
                        found[0] += count
                        found[1] += count * index
                        found[2] += count * index * index
        recurring: dict[BaselineScope, list[RecurringPrice]] = {}
        for (scope, amount), (count, days, days_sq) in sums.items():
            if recurs_as_price(price := RecurringPrice(amount, count, days, days_sq)):
                recurring.setdefault(scope, []).append(price)
        return recurring

    def window(self, now: datetime) -> "RollupWindow":
        """What a recompute at `now` aggregates (baseline_worker.compute.aggregate)."""
        first, today = window_days(now.date(), self._window)
        if self._closed is None or self._closed[0] != today:
            closed: dict[BaselineScope, _DayScope] = {}
            hours_last = today - timedelta(days=OPEN_DAYS)
            for day in (d for d in self._days if first <= d < today):
                for scope, entry in self._days[day].items():
                    entry.shared = True
                    closed.setdefault(scope, _DayScope()).add_day(
                        entry, (day - first).days, day <= hours_last, day.weekday()
                    )
            self._closed = (today, closed)
        # Today as it is now: its rows go on growing after this recompute, into copies.
        partial = dict(self._days.get(today, {}))
        for entry in partial.values():
            entry.shared = True
        unjudged: list[Mapping[BaselineScope, Counter[Decimal]]] = [
            scopes for day, scopes in self._unjudged.items() if first <= day < today
        ]
        if (today_unjudged := self._unjudged.get(today)) is not None:
            # Today's as they are now, as the bins are: a row added before the scope is
            # fitted (a replay fits lazily) must not count as unjudged without its sample.
            unjudged.append({scope: Counter(bins) for scope, bins in today_unjudged.items()})
        return RollupWindow(
            self._closed[1],
            partial,
            (today - first).days,
            self._recurring(first, today),
            unjudged,
            self._categories,
        )


class RollupWindow:
    """One recompute's view of the rollup; each scope is summed when first asked for."""

    def __init__(
        self,
        closed: dict[BaselineScope, _DayScope],
        today: dict[BaselineScope, _Day],
        index: int,
        recurring: Mapping[BaselineScope, list[RecurringPrice]] | None = None,
        unjudged: Sequence[Mapping[BaselineScope, Counter[Decimal]]] = (),
        categories: "MerchantCategories | None" = None,
    ) -> None:
        self._closed, self._today, self._today_index = closed, today, index
        self._recurring = recurring or {}
        # The rollup's own, as it goes on: a replay reads a category when it first fits a
        # merchant, as a recompute reads the table when it runs.
        self._categories = categories or MerchantCategories()
        # The window's days' unjudged amounts (today's as of the recompute, as the bins),
        # summed for a scope when its tail is fitted.
        self._unjudged_days = unjudged
        self._partial: dict[BaselineScope, _DayScope] = {}

    def scopes(self) -> set[BaselineScope]:
        return {*self._closed, *self._today}

    def _today_part(self, scope: BaselineScope) -> _DayScope | None:
        part = self._partial.get(scope)
        if part is None and (day := self._today.get(scope)) is not None:
            part = self._partial[scope] = _DayScope()
            part.add_day(day, self._today_index, closed=False)
        return part

    def stats(self, scope: BaselineScope, with_bins: bool = True) -> ScopeStats | None:
        """The scope's window; without its histogram when `with_bins` is false (summing the
        histogram is most of the cost, and a replay reuses a tail fitted earlier)."""
        closed, today = self._closed.get(scope), self._today_part(scope)
        if closed is not None:
            sums = closed.sums() if today is None else closed.with_open_day(today)
        elif today is not None:
            sums = today.sums()
        else:
            return None
        moments, weights, hours, weekdays, medians = sums
        if not moments.count:
            return None
        bins = self._fed_bins(scope) if with_bins else Counter[int]()
        days = () if closed is None else tuple(closed.closed_medians)
        category = (
            self._categories.of(scope.name, scope.currency)
            if scope.kind is ScopeKind.MERCHANT
            else None
        )
        stats = ScopeStats(
            scope, moments, bins, weights, hours, weekdays, medians, days, category=category
        )
        if prices := self._recurring.get(scope):
            stats = with_recurring_prices(stats, prices)
        if with_bins and (unjudged := self.unjudged(scope, stats.bins)):
            stats = replace(stats, unjudged=unjudged)
        return stats

    def peers(self, category: str, currency: str) -> list[BaselineScope]:
        """The merchant scopes of a category in a currency that hold samples in the window."""
        names = self._categories.merchants(category, currency)
        scopes = (scope_of(ScopeKind.MERCHANT, name, currency) for name in names)
        return [scope for scope in scopes if scope in self._closed or scope in self._today]

    def bins(self, scope: BaselineScope) -> Counter[int]:
        """The scope's window histogram alone (what `stats` adds to a scope's moments): a
        replay that already holds the moments reads it only when it refits the tail."""
        bins = self._fed_bins(scope)
        for price in self._recurring.get(scope, ()):
            bins[bin_of(price.amount)] += price.count
        return bins

    def unjudged(self, scope: BaselineScope, bins: Mapping[int, int]) -> dict[int, int]:
        """What ops/migrations/023's `baseline_unjudged_top` reads for the scope whose window
        histogram is `bins`: its unjudged samples in the window's top bins."""
        found: Counter[Decimal] = Counter()
        for day in self._unjudged_days:
            if (counted := day.get(scope)) is not None:
                found.update(counted)
        return unjudged_top(bins, found) if found else {}

    def _fed_bins(self, scope: BaselineScope) -> Counter[int]:
        bins: Counter[int] = Counter()
        if (closed := self._closed.get(scope)) is not None:
            bins.update(closed.bins)
        if (today := self._today.get(scope)) is not None:
            bins.update(today.bins)  # the one day's histogram as it is: no copy of a copy
        return bins


class MerchantCategories:
    """Each merchant's category in each currency (the latest given), and each category's
    merchants: `merchant_categories` (ops/migrations/025) in memory."""

    def __init__(self) -> None:
        self._of: dict[tuple[str, str], str] = {}
        self._members: defaultdict[tuple[str, str], set[str]] = defaultdict(set)

    def add(self, merchant: str, currency: str, category: str) -> None:
        known = self._of.get((merchant, currency))
        if known == category:
            return
        if known is not None:
            self._members[known, currency].discard(merchant)
        self._of[merchant, currency] = category
        self._members[category, currency].add(merchant)

    def of(self, merchant: str, currency: str) -> str | None:
        return self._of.get((merchant, currency))

    def merchants(self, category: str, currency: str) -> set[str]:
        return self._members.get((category, currency), set())
