"""When the next recompute is due: every `RECOMPUTE_INTERVAL_SECONDS`, or sooner when the
rows stored since the last one are a sizeable share of the window.

Why: baselines are recomputed on the wall clock, the data they judge follow event time. In steady
traffic a minute adds a sliver of a 30-day window and the interval is all it takes. A burst
(a backfill, a terminal's late upload, a labelled stream replayed in fast time) can bring
days of event time in a minute: scored against baselines that saw none of it, a merchant
that first appears in the burst is judged by its category alone for all of it
(docs/accuracy.md, "Through the live system": seed 8's medium tier at 1.63x its nominal
rate, every excess at such merchants). With the growth trigger the baselines keep up with
the event time the rows bring, at a bounded cost (`min_gap_seconds` between recomputes).

The count of stored rows is PostgreSQL's cumulative statistics counter of inserts into
`transactions` (pg_stat_user_tables.n_tup_ins): one catalog read, whatever the table's
size, flushed by the writing sessions at most a second late.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared.db import bounded_connection

log = logging.getLogger(__name__)

INSERTED_SQL = """
SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = 'transactions'
"""


@dataclass(frozen=True)
class Cadence:
    """The recompute schedule (settings: RECOMPUTE_INTERVAL_SECONDS, RECOMPUTE_GROWTH_SHARE,
    RECOMPUTE_MIN_GAP_SECONDS, RECOMPUTE_POLL_SECONDS)."""

    interval_seconds: float
    # A recompute is due once the rows stored since the last one reach this share of the
    # rows in the window (0: the interval only).
    growth_share: float = 0.0
    min_gap_seconds: float = 1.0
    poll_seconds: float = 1.0

    @property
    def watches_growth(self) -> bool:
        return self.growth_share > 0

    def after(self, took_seconds: float) -> "Cadence":
        """The schedule after a recompute that took `took_seconds`: the gap before a growth
        recompute is at least that long, so a burst keeps the worker (and its database) busy
        at most half the time, however large the window, while a small window's recomputes
        follow a fast burst every `min_gap_seconds`."""
        return replace(self, min_gap_seconds=max(self.min_gap_seconds, took_seconds))

    def due(self, elapsed: float, inserted: int | None, window_rows: int) -> bool:
        """Whether a recompute is due `elapsed` seconds after the last one, with `inserted`
        rows stored since (None: unknown) and `window_rows` rows in the last one's window."""
        if elapsed >= self.interval_seconds:
            return True
        if not self.watches_growth or inserted is None or elapsed < self.min_gap_seconds:
            return False
        return inserted >= max(1.0, self.growth_share * window_rows)

    def pause(self, elapsed: float, watching: bool) -> float:
        """How long to wait before looking again, `elapsed` seconds after the last one."""
        left = self.interval_seconds - elapsed
        if watching and self.watches_growth:
            left = min(left, max(self.min_gap_seconds - elapsed, self.poll_seconds))
        return max(left, 0.0)


async def inserted_rows(pool: AsyncConnectionPool) -> int | None:
    """Rows inserted into `transactions` so far (cumulative; None when unreadable: the
    schedule then falls back to the interval). Bounded by the pool's timeout: a database gone
    silent is unreadable too (shared.db.bounded_connection)."""
    try:
        async with bounded_connection(pool) as conn:
            row = await (await conn.execute(INSERTED_SQL)).fetchone()
    except (OperationalError, PoolTimeout) as exc:
        log.warning("insert counter unreadable", extra={"error": repr(exc)})
        return None
    return None if row is None else int(row[0])


async def wait_until_due(
    cadence: Cadence,
    stopping: asyncio.Event,
    read_inserted: Callable[[], Awaitable[int | None]],
    inserted_before: int | None,
    window_rows: int,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Wait from now until the next recompute is due (or stop is asked); the reason:
    `interval`, `growth` or `stop`. `inserted_before` is the counter read before the last
    recompute started (None: unknown, the interval only)."""
    started, watching = clock(), inserted_before is not None
    while not stopping.is_set():
        elapsed = clock() - started
        if elapsed >= cadence.interval_seconds:
            return "interval"
        if inserted_before is not None and cadence.watches_growth:
            if elapsed < cadence.min_gap_seconds:
                await _sleep(stopping, cadence.pause(elapsed, watching))
                continue
            now_inserted = await read_inserted()
            inserted = None if now_inserted is None else now_inserted - inserted_before
            if cadence.due(elapsed, inserted, window_rows):
                return "growth"
        await _sleep(stopping, cadence.pause(clock() - started, watching))
    return "stop"


async def _sleep(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return
