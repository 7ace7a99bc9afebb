"""One recompute: aggregate, record history, publish every scope, tombstone vanished ones.

Order matters for consistency: history rows are committed first (so every published id is
auditable), then every record is published and acknowledged, and only then does
`baselines_current` move on. A crash in between repeats work on the next run (the topic
is compacted, a repeated record or tombstone is harmless) but never loses a tombstone.
Each of the three units of work on PostgreSQL ends within the pool's timeout: on a database
gone silent the recompute fails (DatabaseSilent, an OperationalError) instead of waiting.
"""

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from uuid import uuid4

from aiokafka import AIOKafkaProducer
from psycopg_pool import AsyncConnectionPool

from baseline_worker.compute import (
    OPEN_DAYS,
    ScopeStats,
    advance_window,
    aggregate,
    budget_closed_days,
    window_anchor,
)
from baseline_worker.metrics import BaselineMetrics
from baseline_worker.peers import peer_caps
from baseline_worker.stats import (
    Moments,
    Trend,
    WeekdayLevels,
    hour_ratios,
    hour_spread,
    level_spread,
    recent_days,
    recent_level,
    trend,
    weekday_ratios,
)
from baseline_worker.tail import FittedTail, TailFit, TailLevels, fitted_tail, narrowed
from schemas import Baseline, BaselineScope, ScopeKind, TailModel, encode_model
from shared.db import bounded_connection, columns, timed

log = logging.getLogger(__name__)

# Each statement writes every scope at once. The history rows are the published documents
# themselves, one JSON array parameter (`json_to_recordset` reads the fields it names and
# ignores `schema_version`): each baseline is encoded once, by pydantic's serializer, for the
# topic and the table alike. Building the rows apart (a dict a scope and the stdlib's encoder)
# was a tenth of a recompute's Python time (docs/performance.md, session 8). JSON numbers
# reach `numeric` and `double precision` as their text: stored to their last digit.
_INSERT_HISTORY = """
INSERT INTO baseline_history (id, scope_kind, scope_name, currency, sample_count, mean, stddev,
                              log_mean, log_stddev, tail, window_days, computed_at, window_end)
SELECT id, scope ->> 'kind', scope ->> 'name', scope ->> 'currency', "count", mean, stddev,
       log_mean, log_stddev, tail, window_days, computed_at, window_end
FROM json_to_recordset(%s::json) AS b (
    id uuid, scope json, "count" bigint, mean numeric, stddev numeric,
    log_mean double precision, log_stddev double precision, tail jsonb, window_days integer,
    computed_at timestamptz, window_end date)
"""
# The window's histograms are grouped by scope in memory (baseline_worker/compute.py): at
# the server's 8 MB the planner sorts ~200,000 rows by scope name instead (docs/performance.md,
# session 8). For this transaction only.
_AGGREGATE_WORK_MEM = "SET LOCAL work_mem = '64MB'"
_UPSERT_CURRENT = """
INSERT INTO baselines_current (scope_kind, scope_name, currency, baseline_id)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::uuid[])
ON CONFLICT (scope_kind, scope_name, currency) DO UPDATE SET baseline_id = EXCLUDED.baseline_id
"""
_DELETE_CURRENT = """
DELETE FROM baselines_current c
USING unnest(%s::text[], %s::text[], %s::text[]) AS gone (kind, name, currency)
WHERE c.scope_kind = gone.kind AND c.scope_name = gone.name AND c.currency = gone.currency
"""


DEFAULT_FIT = TailFit()


def scope_tail(stats: ScopeStats, window_days: int, fit: TailFit) -> TailModel | None:
    """The scope's fitted tail with today's level over the window's, and each hour's and
    each weekday's level where the hours, the weekdays differ (None: no tail); the scope on
    its own, without its peers (`fitted_tails`)."""
    return scope_fit(stats, window_days, fit).model


def scope_fit(stats: ScopeStats, window_days: int, fit: TailFit) -> FittedTail:
    """`scope_tail` with the shape the scope's own excesses read."""
    level = trend(stats.moments, stats.day_weights, stats.medians, fit.trend_through)
    hours = hour_ratios(stats.moments, stats.hours) if fit.hour_levels else None
    spread = (
        level.spread
        if hours is None
        else hour_spread(stats.moments, stats.hours, hours, level.spread)
    )
    weekdays, spread = _weekday_levels(stats.moments, stats.weekdays, level, spread, fit)
    bins, unjudged = stats.bins, stats.unjudged
    if fit.detrend_spread and spread < 1.0:
        bins = narrowed(bins, stats.moments.log_mean, spread)
        unjudged = narrowed(unjudged, stats.moments.log_mean, spread) if unjudged else unjudged
    today = _today_level(stats, level, window_days, fit)
    levels = TailLevels(
        today.level_ratio(window_days - 1),
        today.slope,
        None if hours is None else list(hours),
        None if weekdays is None else list(weekdays),
    )
    if stats.scope.kind is not ScopeKind.MERCHANT:
        # A category's window lacks the rows its merchants judged high, which lie past their
        # own edges, not past its own: it is not truncated at its edge (TailFit.truncated_at).
        fit = replace(fit, truncated_at=0.0)
    return fitted_tail(bins, fit, levels, unjudged)


def fitted_tails(
    stats: Sequence[ScopeStats], window_days: int, fit: TailFit
) -> list[TailModel | None]:
    """Every scope's tail (`scope_tail`), a merchant's shape capped at its category peers'
    (`TailFit.peer_cap`): each scope fitted on its own, then the merchants whose own shape
    reads above their cap fitted again under it (most do not: one fit a scope)."""
    fitted = [scope_fit(s, window_days, fit) for s in stats]
    caps = merchant_caps(stats, fitted, fit) if fit.peer_cap else {}
    return [
        capped(s, own, caps.get(s.scope), window_days, fit)
        for s, own in zip(stats, fitted, strict=True)
    ]


def capped(
    stats: ScopeStats, own: FittedTail, cap: float | None, window_days: int, fit: TailFit
) -> TailModel | None:
    """The scope's tail fitted on its own (`own`), or again under `cap` where its own shape
    reads above it; then the shape it had on its own is kept beside the capped one, for the
    alert's explanation (`TailModel.uncapped_shape`)."""
    if cap is None or own.raw_shape is None or own.raw_shape <= cap:
        return own.model
    tail = scope_fit(stats, window_days, replace(fit, shape_cap=cap)).model
    if tail is None or own.model is None or own.model.shape <= tail.shape:
        return tail
    return tail.model_copy(update={"uncapped_shape": own.model.shape})


def merchant_caps(
    stats: Sequence[ScopeStats], fitted: Sequence[FittedTail], fit: TailFit
) -> dict[BaselineScope, float]:
    """Each merchant's cap from its peers' own shapes (baseline_worker.peers)."""
    groups = {s.scope: (s.category, s.scope.currency) for s in stats if s.category is not None}
    shapes = {
        s.scope: f.raw_shape
        for s, f in zip(stats, fitted, strict=True)
        if s.scope in groups and f.raw_shape is not None and s.moments.count >= fit.peer_min_samples
    }
    return peer_caps(shapes, groups, fit)


def _today_level(stats: ScopeStats, level: Trend, window_days: int, fit: TailFit) -> Trend:
    """The level today and its slope: the window's line, or with `fit.recent_trend_days`
    the line through the last closed days' medians where the window shows a trend (the
    window's line still narrows the histogram and detrends the weekdays: it is the whole
    window's)."""
    if not fit.recent_trend_days or level.slope == 0:
        return level
    if not stats.closed_medians and stats.medians.days:
        # The SQL aggregate does not read each closed day's median: silently the window's
        # line would be a setting that does nothing.
        raise ValueError("recent_trend_days needs each closed day's median (replay only)")
    last_closed = window_days - 1 - OPEN_DAYS
    recent = recent_days(stats.closed_medians, last_closed, fit.recent_trend_days)
    return recent_level(level, stats.medians, recent)


def _weekday_levels(
    moments: Moments, weekdays: WeekdayLevels, level: Trend, spread: float, fit: TailFit
) -> tuple[tuple[float, ...] | None, float]:
    """Each weekday's level where the weekdays differ, and `spread` once they are taken out
    (docs/accuracy.md, "Weekday levels"). The weekdays are read without the trend; with no
    trend (most scopes) there is nothing to take out, and nothing is rebuilt."""
    if not fit.weekday_levels:
        return None, spread
    if level.slope != 0:
        weekdays = weekdays.detrended(level)
    ratios = weekday_ratios(moments, weekdays)
    if ratios is None:
        return None, spread
    return ratios, level_spread(moments, weekdays, ratios, spread)


@dataclass(frozen=True)
class RecomputeResult:
    published: list[Baseline]
    tombstoned: list[BaselineScope]


def to_baseline(
    stats: ScopeStats,
    window_days: int,
    now: datetime,
    fit: TailFit = DEFAULT_FIT,
    last_day: date | None = None,
) -> Baseline:
    """One scope's baseline (`to_baselines`), on its own: without peers."""
    return to_baselines([stats], window_days, now, fit, last_day)[0]


def to_baselines(
    stats: Sequence[ScopeStats],
    window_days: int,
    now: datetime,
    fit: TailFit = DEFAULT_FIT,
    last_day: date | None = None,
) -> list[Baseline]:
    """The scopes' baselines computed at `now` over the window that ends on `last_day`
    (None: `now`'s day)."""
    # Stated only when it is not computed_at's day: the steady state's documents are those
    # of before the field (`Baseline.window_end`).
    window_end = None if last_day == now.astimezone(UTC).date() else last_day
    tails = fitted_tails(stats, window_days, fit)
    return [
        with_tail(s, window_days, now, tail, window_end)
        for s, tail in zip(stats, tails, strict=True)
    ]


def with_tail(
    stats: ScopeStats,
    window_days: int,
    now: datetime,
    tail: TailModel | None,
    window_end: date | None = None,
) -> Baseline:
    moments = stats.moments
    return Baseline(
        id=uuid4(),
        scope=stats.scope,
        count=moments.count,
        mean=moments.mean,
        stddev=moments.stddev,
        log_mean=moments.log_mean,
        log_stddev=moments.log_stddev,
        tail=tail,
        window_days=window_days,
        computed_at=now,
        window_end=window_end,
    )


class Recomputer:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        producer: AIOKafkaProducer,
        topic: str,
        window_days: int,
        metrics: BaselineMetrics,
        fit: TailFit = DEFAULT_FIT,
    ) -> None:
        self._fit = fit
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._window_days = window_days
        self._metrics = metrics
        # The Kafka key of each scope published last time (`_scope_keys`).
        self._keys: dict[BaselineScope, bytes] = {}
        # A quarter of the bound for a backlog of closed days (ops/migrations/021): the rest
        # of a unit's statements fit in the other three.
        self._closed_days_budget = pool.timeout / 4

    async def run(self, now: datetime) -> RecomputeResult:
        baselines, documents, previous = await self._compute_and_record(now)
        current = {b.scope for b in baselines}
        vanished = [scope for scope in previous if scope not in current]
        await self._publish(baselines, documents, vanished)
        await self._advance_current(baselines, vanished)
        self._observe(baselines, vanished)
        return RecomputeResult(baselines, vanished)

    async def _compute_and_record(
        self, now: datetime
    ) -> tuple[list[Baseline], list[bytes], list[BaselineScope]]:
        """Every scope's baseline, its published document (`encode_model`), and the scopes
        published last time; the history rows committed."""
        async with (
            bounded_connection(self._pool) as conn,
            conn.transaction(),
            timed(self._metrics.db_query_duration, "advance_baseline_window"),
        ):
            await budget_closed_days(conn, self._closed_days_budget)
            last_day = await window_anchor(conn, now)
            await advance_window(conn, last_day, self._window_days)
        async with (
            bounded_connection(self._pool) as conn,
            conn.transaction(),
            timed(self._metrics.db_query_duration, "aggregate_baselines"),
        ):
            await conn.execute(_AGGREGATE_WORK_MEM)
            await budget_closed_days(conn, self._closed_days_budget)
            stats = await aggregate(conn, last_day, self._window_days)
        # The fits are this worker's CPU (~0.1 ms a scope), not the database's answer: outside
        # its bound, or many scopes would read as a database that did not answer.
        baselines, unusable = _finite_only(
            to_baselines(stats, self._window_days, now, self._fit, last_day)
        )
        documents = [encode_model(b) for b in baselines]
        async with bounded_connection(self._pool) as conn, conn.transaction():
            async with timed(self._metrics.db_query_duration, "insert_baseline_history"):
                await conn.execute(_INSERT_HISTORY, (_json_array(documents),))
            async with timed(self._metrics.db_query_duration, "select_baselines_current"):
                rows = await (
                    await conn.execute(
                        "SELECT scope_kind, scope_name, currency FROM baselines_current"
                    )
                ).fetchall()
        # A scope left out this time keeps what it had: it has not vanished from the window.
        previous = [
            scope
            for k, n, c in rows
            if (scope := BaselineScope(kind=ScopeKind(k), name=n, currency=c)) not in unusable
        ]
        return baselines, documents, previous

    async def _publish(
        self,
        baselines: Sequence[Baseline],
        documents: Sequence[bytes],
        vanished: Sequence[BaselineScope],
    ) -> None:
        """One Kafka transaction per recompute: detectors (read_committed) see the whole new
        set or none of it, even if this worker dies half way."""
        keys = self._scope_keys([b.scope for b in baselines])
        async with self._producer.transaction():
            sends = [
                await self._producer.send(self._topic, key=key, value=document)
                for key, document in zip(keys, documents, strict=True)
            ]
            sends += [
                await self._producer.send(self._topic, key=scope.key(), value=None)
                for scope in vanished
            ]
        await asyncio.gather(*sends)

    def _scope_keys(self, scopes: Sequence[BaselineScope]) -> list[bytes]:
        """Each scope's key, kept from the last recompute for the scopes published then: a
        key is canonical JSON, ~10 us to encode, and the scopes seldom change. Only the
        scopes published now are kept."""
        known = self._keys
        keys = [known.get(scope) or scope.key() for scope in scopes]
        self._keys = dict(zip(scopes, keys, strict=True))
        return keys

    async def _advance_current(
        self, baselines: Sequence[Baseline], vanished: Sequence[BaselineScope]
    ) -> None:
        async with (
            bounded_connection(self._pool) as conn,
            conn.transaction(),
            timed(self._metrics.db_query_duration, "update_baselines_current"),
        ):
            current = [
                (b.scope.kind.value, b.scope.name, b.scope.currency, b.id) for b in baselines
            ]
            await conn.execute(_UPSERT_CURRENT, columns(current, 4))
            gone = [(s.kind.value, s.name, s.currency) for s in vanished]
            await conn.execute(_DELETE_CURRENT, columns(gone, 3))

    def _observe(self, baselines: Sequence[Baseline], vanished: Sequence[BaselineScope]) -> None:
        for kind in ScopeKind:
            self._metrics.scopes.labels(kind=kind.value).set(
                sum(1 for b in baselines if b.scope.kind == kind)
            )
        self._metrics.tombstones.inc(len(vanished))


def _finite_only(baselines: list[Baseline]) -> tuple[list[Baseline], set[BaselineScope]]:
    """The baselines whose moments are all finite, and the scopes of the others, each logged.
    Bounded amounts cannot make one, but a NaN or an infinity would be written as JSON null,
    fail the history's NOT NULL and with it every scope's recompute: one scope is left out
    instead (it keeps its last baseline)."""
    kept: list[Baseline] = []
    unusable: set[BaselineScope] = set()
    for baseline in baselines:
        values = (baseline.mean, baseline.stddev, baseline.log_mean, baseline.log_stddev)
        if all(value is None or math.isfinite(value) for value in values):
            kept.append(baseline)
        else:
            unusable.add(baseline.scope)
            log.error(
                "baseline left out: a moment is not finite",
                extra={"scope": baseline.scope.key().decode(), "moments": repr(values)},
            )
    return kept, unusable


def _json_array(documents: Sequence[bytes]) -> str:
    return (b"[" + b",".join(documents) + b"]").decode("utf-8")
