"""Which scored transactions feed the baselines: the domain rule the rollup trigger applies.

Every transaction except those judged `high` or `critical`, so that an outlier never widens
(or fattens the tail of) the baseline it is judged against. `medium` rows stay in: leaving
them out too trimmed the top of every distribution, and the next baseline then flagged more
(docs/accuracy.md). The SQL trigger (ops/migrations/005, 007) says the same as
`WHERE severity IS NULL OR severity = 'medium'`; tests/integration/test_baselines.py checks
that the two agree on the same rows.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from baseline_worker.compute import ScopeStats, window_days
from baseline_worker.histogram import bin_of
from baseline_worker.stats import DayWeights, Moments
from schemas import BaselineScope, ScopeKind, Severity, Transaction

_LEFT_OUT: frozenset[Severity] = frozenset(("high", "critical"))


def feeds_baseline(severity: Severity | None) -> bool:
    return severity not in _LEFT_OUT


def scopes_of(txn: Transaction) -> tuple[BaselineScope, BaselineScope]:
    """The two scopes a transaction feeds: its category and its merchant, in its currency."""
    return (
        BaselineScope(kind=ScopeKind.CATEGORY, name=txn.category, currency=txn.currency),
        BaselineScope(kind=ScopeKind.MERCHANT, name=txn.merchant, currency=txn.currency),
    )


@dataclass
class _DayScope:
    moments: Moments = field(default_factory=Moments)
    bins: Counter[int] = field(default_factory=Counter)
    weights: DayWeights = field(default_factory=DayWeights)

    def add(self, other: "_DayScope", day_index: int | None = None) -> None:
        """Add a day (`day_index` in the window) or a sum of days (their own weights)."""
        self.moments += other.moments
        self.bins.update(other.bins)
        if day_index is None:
            self.weights += other.weights
        else:
            self.weights += DayWeights.of(day_index, other.moments)


class MemoryRollup:
    """`baseline_rollup` and `baseline_rollup_bins` in memory, for event-time replays
    (the accuracy benchmark, `jalytics-backtest`): per UTC day of `transaction_date` and
    scope, the moments and the amount histogram of the rows that feed baselines."""

    def __init__(self, window_days: int) -> None:
        self._window = window_days
        self._days: defaultdict[date, dict[BaselineScope, _DayScope]] = defaultdict(dict)
        # The window's closed days summed, for the day it was made for: a replay runs in
        # time order, so only today changes between two recomputes of the same day.
        self._closed: tuple[date, dict[BaselineScope, _DayScope]] | None = None

    def add(self, txn: Transaction) -> None:
        day = txn.transaction_date.astimezone(UTC).date()
        moments, bin_index = Moments.of(txn.amount), bin_of(txn.amount)
        if self._closed is not None and day < self._closed[0]:
            self._closed = None  # a late row changed a closed day
        rows = self._days[day]
        for scope in scopes_of(txn):
            entry = rows.setdefault(scope, _DayScope())
            entry.moments += moments
            entry.bins[bin_index] += 1

    def window(self, now: datetime) -> "RollupWindow":
        """What a recompute at `now` aggregates (baseline_worker.compute.aggregate)."""
        first, today = window_days(now, self._window)
        if self._closed is None or self._closed[0] != today:
            closed: dict[BaselineScope, _DayScope] = {}
            for day in (d for d in self._days if first <= d < today):
                for scope, entry in self._days[day].items():
                    closed.setdefault(scope, _DayScope()).add(entry, (day - first).days)
            self._closed = (today, closed)
        # A copy of today: its rows go on growing after this recompute.
        partial: dict[BaselineScope, _DayScope] = {}
        for scope, entry in self._days.get(today, {}).items():
            partial[scope] = _DayScope()
            partial[scope].add(entry, (today - first).days)
        return RollupWindow(self._closed[1], partial)


class RollupWindow:
    """One recompute's view of the rollup; each scope is summed when first asked for."""

    def __init__(
        self, closed: dict[BaselineScope, _DayScope], today: dict[BaselineScope, _DayScope]
    ) -> None:
        self._closed, self._today = closed, today

    def scopes(self) -> set[BaselineScope]:
        return {*self._closed, *self._today}

    def stats(self, scope: BaselineScope) -> ScopeStats | None:
        total = _DayScope()
        for part in (self._closed.get(scope), self._today.get(scope)):
            if part is not None:
                total.add(part)
        if not total.moments.count:
            return None
        return ScopeStats(scope, total.moments, total.bins, total.weights)
