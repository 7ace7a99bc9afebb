"""The baseline worker's loop: stand by for leadership, then recompute on a schedule."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import replace
from functools import partial

from aiokafka.errors import KafkaError, ProducerFenced
from prometheus_client import CollectorRegistry
from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from baseline_worker.cadence import Cadence, inserted_rows, wait_until_due
from baseline_worker.leadership import LeaderLock, LeadershipLost, leader_lock_key
from baseline_worker.metrics import BaselineMetrics
from baseline_worker.recompute import DEFAULT_FIT, Recomputer, RecomputeResult
from baseline_worker.settings import BaselineSettings
from schemas import ScopeKind
from shared.clock import Clock, utc_now
from shared.db import open_pool
from shared.kafka import RenewableProducer, ensure_topics, make_producer, project_topics
from shared.migrations import prepare_schema
from shared.ops_http import start_ops_server
from shared.tasks import hold_until_done

log = logging.getLogger(__name__)

# How long a stop waits for the recompute in hand to finish. Past it the recompute waits on a
# dependency gone silent (a frozen broker never acknowledges its Kafka transaction, which then
# is never committed: nothing of it is seen) and is given up, so that the process exits within
# a supervisor's grace (30 s) instead of being killed.
STOP_GRACE_SECONDS = 15.0


class BaselineService:
    def __init__(
        self,
        settings: BaselineSettings,
        registry: CollectorRegistry,
        clock: Clock = utc_now,
        database_timeout_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        # DATABASE_TIMEOUT_SECONDS unless a test asks for another bound.
        self.database_timeout_seconds = (
            settings.database_timeout_seconds
            if database_timeout_seconds is None
            else database_timeout_seconds
        )
        self.registry = registry
        self.metrics = BaselineMetrics.create(registry)
        self.clock = clock
        self.stopping = asyncio.Event()
        self.is_leader = False

    def health(self) -> dict[str, object]:
        return {"status": "ok", "role": "leader" if self.is_leader else "standby"}

    async def run(self, *, once: bool = False) -> None:
        s = self.settings
        ops = await start_ops_server(self.registry, self.health, s.metrics_host, s.metrics_port)
        await asyncio.to_thread(prepare_schema, s)
        await ensure_topics(s.kafka_bootstrap_servers, project_topics(s))
        pool = await open_pool(
            s.database_url,
            s.database_schema,
            max_size=2,
            connection_timeout=self.database_timeout_seconds,
        )
        try:
            async with LeaderLock(
                s.database_url,
                leader_lock_key(s.database_schema),
                self.database_timeout_seconds,
                idle_seconds=self.longest_silence_of_a_leader(),
            ) as lock:
                await self._lead(lock, pool, once=once)
        finally:
            await pool.close()
            await ops.cleanup()

    def longest_silence_of_a_leader(self) -> float:
        """The longest a leader's lock session goes without a statement: a recompute (its
        database steps bounded, its publish waiting at most about as long) and the wait for
        the next one, after which it confirms the lock again."""
        return self.settings.recompute_interval_seconds + 5 * self.database_timeout_seconds

    def transactional_id(self) -> str:
        """Shared by every instance of one deployment: a new leader's producer fences the
        old leader's, so a leader that lost its lock can no longer publish."""
        return f"jalytics-baselines-{self.settings.database_schema}-{self.settings.topic_baselines}"

    async def _lead(self, lock: LeaderLock, pool: AsyncConnectionPool, *, once: bool) -> None:
        s = self.settings
        while not self.stopping.is_set():
            self._set_leader(False)
            if not await self._until_stopped(lock.acquire(s.standby_poll_seconds)):
                return
            self._set_leader(True)
            # Started only once leading: a standby's producer would fence the live leader.
            producers = RenewableProducer(
                lambda: make_producer(
                    s.kafka_bootstrap_servers, transactional_id=self.transactional_id()
                )
            )
            await producers.start()
            try:
                while not self.stopping.is_set():
                    # Confirmed leader first: only then may a dead producer be replaced (a new
                    # one with our transactional id fences whoever else holds it).
                    await lock.confirm()
                    if not await self._recompute_then_wait(pool, producers, once=once):
                        return
            except LeadershipLost as exc:
                log.warning("lost baseline leadership; standing by", extra={"error": str(exc)})
                await lock.release()
            finally:
                await producers.stop()

    def cadence(self) -> Cadence:
        s = self.settings
        return Cadence(
            s.recompute_interval_seconds,
            s.recompute_growth_share,
            s.recompute_min_gap_seconds,
            s.recompute_poll_seconds,
        )

    async def _recompute_then_wait(
        self, pool: AsyncConnectionPool, producers: RenewableProducer, *, once: bool
    ) -> bool:
        """One recompute, then wait until the next is due (baseline_worker/cadence.py);
        False when there is to be no next one."""
        cadence = self.cadence()
        read = partial(inserted_rows, pool)
        before = await read() if cadence.watches_growth else None
        started = time.monotonic()
        result = await self._recompute_in_hand(pool, producers)
        if once:
            return False
        cadence = cadence.after(time.monotonic() - started)
        # A failed recompute is retried at the interval, not as soon as rows arrive.
        since = None if result is None else before
        reason = await wait_until_due(cadence, self.stopping, read, since, _window_rows(result))
        if reason != "stop":
            self.metrics.recompute_triggers.labels(reason=reason).inc()
        return reason != "stop"

    async def _recompute_in_hand(
        self, pool: AsyncConnectionPool, producers: RenewableProducer
    ) -> RecomputeResult | None:
        """recompute_once, finished also when a stop comes meanwhile, unless it is still not
        done STOP_GRACE_SECONDS after the stop (then given up: None)."""
        task = asyncio.ensure_future(self.recompute_once(pool, producers))
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        finally:
            stop.cancel()
            abandoned = not task.done()
            if abandoned:  # its cancellation may wait on the silent broker: not waited for
                task.cancel()
                hold_until_done(task)
        if abandoned:
            log.error(
                "the recompute in hand did not finish after the stop; given up",
                extra={"seconds": STOP_GRACE_SECONDS},
            )
            return None
        return task.result()

    async def recompute_once(
        self, pool: AsyncConnectionPool, producers: RenewableProducer
    ) -> RecomputeResult | None:
        s, producer = self.settings, producers.current
        recomputer = Recomputer(
            pool,
            producer,
            s.topic_baselines,
            s.baseline_window_days,
            self.metrics,
            replace(
                DEFAULT_FIT,
                hour_levels=s.baseline_hour_levels,
                weekday_levels=s.baseline_weekday_levels,
                trend_through=s.baseline_trend_through,
                shape_estimator=s.baseline_shape_estimator,
                price_top=s.baseline_price_top,
                peer_cap=s.baseline_peer_shape_cap,
                truncated_at=DEFAULT_FIT.truncated_at if s.baseline_truncated_fit else 0.0,
            ),
        )
        started = time.perf_counter()
        try:
            result = await recomputer.run(self.clock())
        except ProducerFenced as exc:
            # Only a newer leader's producer fences ours: it holds the lock now.
            raise LeadershipLost("fenced by a newer leader's producer") from exc
        except (OperationalError, PoolTimeout, KafkaError, TimeoutError) as exc:
            self.metrics.recompute_failures.inc()
            log.warning("baseline recompute failed; will retry", extra={"error": repr(exc)})
            if isinstance(exc, KafkaError):
                # After a broker restart the producer may never send again: the next
                # recompute gets a new one (a recompute is published whole or not at all).
                with contextlib.suppress(KafkaError):  # still away: the next run tries again
                    await producers.renew_if_broken(producer, exc)
            return None
        elapsed = time.perf_counter() - started
        self.metrics.recompute_duration.observe(elapsed)
        self.metrics.last_success.set(time.time())
        log.info(
            "baselines published",
            extra={
                "scopes": len(result.published),
                "tombstones": len(result.tombstoned),
                "seconds": round(elapsed, 4),
            },
        )
        return result

    def _set_leader(self, leader: bool) -> None:
        self.is_leader = leader
        self.metrics.leader.set(1 if leader else 0)

    async def _until_stopped(self, waiting: Coroutine[object, object, None]) -> bool:
        """Run `waiting` unless stop comes first; True when it completed."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self.stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stop):
            if pending not in done:
                pending.cancel()
        return task in done


def _window_rows(result: RecomputeResult | None) -> int:
    """The rows in the recompute's window: each row feeds exactly one category scope."""
    if result is None:
        return 0
    return sum(b.count for b in result.published if b.scope.kind == ScopeKind.CATEGORY)
