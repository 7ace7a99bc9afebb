"""Event-time replay: production's scorer against baselines recomputed as event time passes.

Transactions are scored in time order by the real `detector_worker.scoring.score`. The
baselines come from production's own pieces: the rollup's arithmetic
(`baseline_worker.rollup.MemoryRollup`, what the SQL trigger keeps, checked against it by
tests/integration/test_baselines.py), the window of `baseline_worker.compute.window_days`,
and the baseline worker's fit (`baseline_worker.recompute.fitted_tails`: each scope's tail, a
merchant's shape capped at its category peers', whose shapes are read once per event-time
day). Rows judged high or critical never feed the rollup
(`baseline_worker.rollup.feeds_baseline`), but those the fixed-price rule kept out count in
again where their amount recurs (`baseline_worker.compute.with_recurring_prices`).

Production recomputes every `RECOMPUTE_INTERVAL_SECONDS` (60 s) of wall-clock time, or sooner
after a burst of rows (`RECOMPUTE_GROWTH_SHARE`); a replay recomputes at every
`recompute_every` of event time (an hour by default), so a baseline is at most that much
staler than in production. A live system replayed in fast time cannot show this: its
baselines are recomputed on the wall clock and the rows stored (over a window that ends at
the newest stored transaction's day), not at each hour of the transactions' dates.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from baseline_worker.compute import ScopeStats
from baseline_worker.peers import peer_caps
from baseline_worker.recompute import DEFAULT_FIT, capped, scope_fit, with_tail
from baseline_worker.rollup import (
    MemoryRollup,
    RollupWindow,
    feeds_baseline,
    kept_as_price,
    scope_of,
)
from baseline_worker.tail import FittedTail, TailFit
from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.scoring import ScoringConfig, score
from schemas import BaselineScope, TailModel, Transaction, Verdict

WINDOW_DAYS = 30
HOUR = timedelta(hours=1)
# Which scored transactions enter the rollup (production: all but high and critical).
RollupPolicy = Callable[[Verdict], bool]


def production_policy(verdict: Verdict) -> bool:
    return feeds_baseline(verdict.severity, verdict.rule, verdict.z_score)


@dataclass(frozen=True)
class ExclusionEdge:
    """Production's rule with another edge for the `tail` rule's high rows (None: every high
    row stays out): a replay setting, picklable, so that a grid's workers can take it."""

    tail_z: float | None

    def __call__(self, verdict: Verdict) -> bool:
        return feeds_baseline(verdict.severity, verdict.rule, verdict.z_score, self.tail_z)


@dataclass(frozen=True)
class HeavyTailEdge:
    """Production's rule, but a `tail` high row of a scope whose fitted shape reads at least
    `heavy_shape` feeds up to `tail_z`: the edge only where the censoring costs calibration
    (heavy tails), not where it keeps small spikes out of a light tail (round 12)."""

    heavy_shape: float
    tail_z: float

    def __call__(self, verdict: Verdict) -> bool:
        tail = verdict.baseline.tail if verdict.baseline else None
        edge = self.tail_z if tail is not None and tail.shape >= self.heavy_shape else None
        return feeds_baseline(verdict.severity, verdict.rule, verdict.z_score, edge)


@dataclass(frozen=True)
class _Fitted:
    day: date
    count: int
    tail: TailModel | None


@dataclass
class _PeerCaps:
    """The merchants' caps (baseline_worker.peers) of one day, by category and currency: from
    the peers' shapes when a merchant of the group is first fitted that day (production reads
    them at every recompute; a day's shapes move by noise only)."""

    day: date | None = None
    groups: dict[tuple[str, str], dict[BaselineScope, float]] = field(default_factory=dict)
    # The peers' own fits, by the recompute they were made at: a merchant fitted at the same
    # recompute reuses its own instead of fitting the same window again.
    own: dict[BaselineScope, tuple[datetime, FittedTail]] = field(default_factory=dict)

    def own_fit(self, scope: BaselineScope, at: datetime) -> FittedTail | None:
        found = self.own.get(scope)
        return found[1] if found is not None and found[0] == at else None


# A scope's tail is fitted again when its window has grown by this share since the last fit
# (or a new day moved the window). In production every recompute refits; an hour adds ~1/700
# of a 30-day window, so refitting each hour would change the tail by noise only, and the
# fits would be most of a long backtest's time.
REFIT_GROWTH = 0.01


class ReplayBaselines(Mapping[ScopeKey, HeldBaseline]):
    """The baselines of one recompute, each built on first look-up (most scopes are never
    looked up within one recompute interval). A scope without samples is absent, as a
    tombstone makes it."""

    def __init__(
        self,
        window: RollupWindow,
        window_days: int,
        now: datetime,
        fit: TailFit,
        fitted: dict[ScopeKey, _Fitted],
        caps: _PeerCaps | None = None,
    ):
        self._window, self._days, self._now, self._fit = window, window_days, now, fit
        self._fitted, self._caps = fitted, caps or _PeerCaps()
        self._built: dict[ScopeKey, HeldBaseline | None] = {}

    def __getitem__(self, key: ScopeKey) -> HeldBaseline:
        if (held := self._held(key)) is None:
            raise KeyError(key)
        return held

    def get(self, key: ScopeKey, default: Any = None) -> Any:
        # What the scorer calls, three times a row: without Mapping.get's KeyError round
        # trip for every scope that has no baseline.
        held = self._held(key)
        return default if held is None else held

    def _held(self, key: ScopeKey) -> HeldBaseline | None:
        if key not in self._built:
            kind, name, currency = key
            scope = scope_of(kind, name, currency)
            stats = self._window.stats(scope, with_bins=False)
            self._built[key] = None if stats is None else self._baseline(key, scope, stats)
        return self._built[key]

    def _baseline(self, key: ScopeKey, scope: BaselineScope, stats: ScopeStats) -> HeldBaseline:
        count, today = stats.moments.count, self._now.date()
        last = self._fitted.get(key)
        if last is None or last.day != today or count >= last.count * (1 + REFIT_GROWTH):
            full = self._full(scope, stats)
            cap = self._cap(scope, stats.category)
            own = self._caps.own_fit(scope, self._now) or scope_fit(full, self._days, self._fit)
            tail = capped(full, own, cap, self._days, self._fit)
            last = _Fitted(today, count, tail)
            self._fitted[key] = last
        return HeldBaseline.of(with_tail(stats, self._days, self._now, last.tail))

    def _full(self, scope: BaselineScope, stats: ScopeStats) -> ScopeStats:
        """`stats` with the histogram and the unjudged samples a fit reads."""
        bins = self._window.bins(scope)
        return replace(stats, bins=bins, unjudged=self._window.unjudged(scope, bins))

    def _cap(self, scope: BaselineScope, category: str | None) -> float | None:
        """A merchant's cap from its peers' own shapes today (`fitted_tails`' in production)."""
        if category is None or not self._fit.peer_cap:
            return None
        today = self._now.date()
        if self._caps.day != today:
            self._caps.day, self._caps.groups, self._caps.own = today, {}, {}
        group = (category, scope.currency)
        if (caps := self._caps.groups.get(group)) is None:
            caps = self._caps.groups[group] = self._group_caps(group)
        return caps.get(scope)

    def _group_caps(self, group: tuple[str, str]) -> dict[BaselineScope, float]:
        members, shapes = {}, {}
        for peer in self._window.peers(*group):
            if (stats := self._window.stats(peer, with_bins=False)) is None:
                continue
            members[peer] = group
            if stats.moments.count >= self._fit.peer_min_samples:
                own = scope_fit(self._full(peer, stats), self._days, self._fit)
                self._caps.own[peer] = (self._now, own)
                if own.raw_shape is not None:
                    shapes[peer] = own.raw_shape
        return peer_caps(shapes, members, self._fit)

    def __iter__(self) -> Iterator[ScopeKey]:
        return ((s.kind, s.name, s.currency) for s in self._window.scopes())

    def __len__(self) -> int:
        return len(self._window.scopes())


def replay(
    transactions: Iterable[Transaction],
    config: ScoringConfig,
    *,
    window_days: int = WINDOW_DAYS,
    recompute_every: timedelta = HOUR,
    fit: TailFit = DEFAULT_FIT,
    keeps: RollupPolicy = production_policy,
    unscored_until: datetime | None = None,
) -> Iterator[tuple[Transaction, Verdict]]:
    """Score each transaction (in time order) and yield it with its verdict; those before
    `unscored_until` without a baseline, as the live system scores a history posted faster
    than its first baselines are computed (`jalytics-backtest --history-unscored`)."""
    rollup = MemoryRollup(window_days)
    baselines: Mapping[ScopeKey, HeldBaseline] = {}
    fitted: dict[ScopeKey, _Fitted] = {}
    caps = _PeerCaps()
    next_recompute: datetime | None = None
    step = recompute_every.total_seconds()
    for txn in transactions:
        at = txn.transaction_date
        if next_recompute is None or at >= next_recompute:
            # Recomputes fall on whole multiples of the interval since the epoch.
            start = datetime.fromtimestamp(at.timestamp() // step * step, tz=UTC)
            baselines = ReplayBaselines(rollup.window(start), window_days, start, fit, fitted, caps)
            next_recompute = start + recompute_every
        if unscored_until is not None and at < unscored_until:
            verdict = Verdict(transaction_id=txn.id, anomaly=False, scored_at=at)
        else:
            verdict = score(txn, baselines, config, at)
        if keeps(verdict):
            # A row scored without a baseline fed it unjudged (ops/migrations/023).
            rollup.add(txn, unjudged=verdict.baseline is None)
        elif kept_as_price(verdict.severity, verdict.rule):
            rollup.keep_out(txn)
        yield txn, verdict
