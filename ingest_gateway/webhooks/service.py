"""The notifier: consume `alerts` (own group), deliver to every matching subscription, commit
an offset only when every delivery of its record has ended.

At least once: a crash at any point re-reads from the last commit and delivers again, with the
same event ids (receivers de-duplicate). Runs apart from the detector: a slow receiver never
slows detection.
"""

import asyncio
import logging
import time
from collections.abc import Iterable

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest_gateway.webhooks.backoff import Backoff
from ingest_gateway.webhooks.circuit import CircuitBreaker
from ingest_gateway.webhooks.delivery import Deliverer, RetryPolicy
from ingest_gateway.webhooks.dispatcher import Dispatcher
from ingest_gateway.webhooks.metrics import NotifierMetrics
from ingest_gateway.webhooks.sender import Sender, guarded_session
from ingest_gateway.webhooks.settings import NotifierSettings
from ingest_gateway.webhooks.store import DeadLetterStore, SubscriptionStore
from shared.db import open_pool
from shared.migrations import prepare_schema
from shared.ops_http import start_ops_server

log = logging.getLogger(__name__)

# How long a commit, and the consumer's stop, may wait for a broker that does not answer.
COMMIT_TIMEOUT_SECONDS = 5.0
CONSUMER_STOP_SECONDS = 3.0


class _ForgetRevoked(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: "NotifierService") -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._service.commit_done()
        self._service.dispatcher.tracker.forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(p.partition for p in assigned)})


class NotifierService:
    def __init__(self, settings: NotifierSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = NotifierMetrics.create(registry)
        self.stopping = asyncio.Event()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.webhook_consumer_group,
            enable_auto_commit=False,
            auto_offset_reset=settings.webhook_start_from,
            isolation_level="read_committed",
        )
        self.dispatcher: Dispatcher
        self._subscriptions: SubscriptionStore

    async def run(self) -> None:
        settings = self.settings
        await asyncio.to_thread(prepare_schema, settings)
        pool = await open_pool(settings.database_url, settings.database_schema, max_size=4)
        session = guarded_session(settings.webhook_allow_private, settings.webhook_timeout_seconds)
        self._subscriptions = SubscriptionStore(pool, self.metrics.db_query_duration)
        self.dispatcher = Dispatcher(self._deliverer(session, pool), self.metrics, self._circuit)
        ops = await start_ops_server(
            self.registry, self._health, settings.metrics_host, settings.metrics_port
        )
        try:
            await self._consume()
        finally:
            await self.dispatcher.close()
            await self._stop_consumer()
            await session.close()
            await pool.close()
            await ops.cleanup()

    def _deliverer(self, session: aiohttp.ClientSession, pool: AsyncConnectionPool) -> Deliverer:
        settings = self.settings
        policy = RetryPolicy(
            Backoff(settings.webhook_backoff_base_seconds, settings.webhook_backoff_cap_seconds),
            settings.webhook_max_retry_seconds,
        )
        sender = Sender(session, settings.webhook_allow_private)
        dead_letters = DeadLetterStore(pool, self.metrics.db_query_duration)
        return Deliverer(sender, dead_letters, self.metrics, policy)

    def _circuit(self) -> CircuitBreaker:
        return CircuitBreaker(
            self.settings.webhook_circuit_failure_threshold,
            self.settings.webhook_circuit_open_seconds,
        )

    async def _consume(self) -> None:
        # Without the subscriptions, records read would match none and be committed as done:
        # at start-up they must be read (else the process stops and its supervisor retries).
        await self.dispatcher.set_subscriptions(await self._subscriptions.live_with_secrets())
        self.consumer.subscribe([self.settings.topic_alerts], listener=_ForgetRevoked(self))
        await self.consumer.start()
        refreshed = time.monotonic()
        while not self.stopping.is_set():
            if crash := self.dispatcher.crashed():
                raise crash
            batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
            for records in batch.values():
                for record in records:
                    self.dispatcher.dispatch(record)
            await self.commit_done()
            self._pause_when_behind()
            if time.monotonic() - refreshed >= self.settings.webhook_subscriptions_refresh_seconds:
                await self._refresh()
                refreshed = time.monotonic()
        await self._drain()

    async def _refresh(self) -> None:
        try:
            live = await self._subscriptions.live_with_secrets()
        except (OperationalError, PoolTimeout) as exc:
            log.warning(
                "could not read the subscriptions; keeping the last", extra={"error": repr(exc)}
            )
            return
        await self.dispatcher.set_subscriptions(live)

    def _pause_when_behind(self) -> None:
        """Stop reading while too many records are unfinished; heartbeats go on meanwhile."""
        assigned = self.consumer.assignment()
        if self.dispatcher.tracker.in_flight() >= self.settings.webhook_max_in_flight:
            self.consumer.pause(*assigned)
        else:
            self.consumer.resume(*assigned)

    async def commit_done(self) -> None:
        offsets = self.dispatcher.tracker.committable()
        self.metrics.in_flight.set(self.dispatcher.tracker.in_flight())
        if not offsets:
            return
        try:
            # Bounded: aiokafka retries a commit the broker does not answer for as long as
            # it does not, and the loop (and a SIGTERM) would wait with it.
            await asyncio.wait_for(self.consumer.commit(offsets), COMMIT_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            # Those records are delivered again after a restart or rebalance (event ids are
            # stable): at least once, never lost.
            log.warning("offset commit failed", extra={"error": repr(exc)})

    async def _drain(self) -> None:
        """On SIGTERM: give deliveries in progress a little time, commit what ended."""
        deadline = time.monotonic() + self.settings.shutdown_timeout_seconds
        while self.dispatcher.tracker.in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            await self.commit_done()
        await self.commit_done()
        log.info("notifier stopping", extra={"unfinished": self.dispatcher.tracker.in_flight()})

    async def _stop_consumer(self) -> None:
        """Bounded: aiokafka's stop asks the broker to leave the group and waits up to its
        request timeout (40 s) for the answer, so a broker gone silent (frozen,
        partitioned) held a SIGTERM past a supervisor's grace. Past the bound the group
        coordinator drops the member after its session timeout anyway."""
        try:
            await asyncio.wait_for(self.consumer.stop(), CONSUMER_STOP_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            log.warning("consumer did not stop cleanly", extra={"error": repr(exc)})

    def _health(self) -> dict[str, object]:
        """ok once partitions are assigned: from then on, alerts published are delivered."""
        assigned = sorted(p.partition for p in self.consumer.assignment())
        return {
            "status": "ok" if assigned else "starting",
            "partitions": assigned,
            "subscriptions": len(self.dispatcher.queues),
            "in_flight": self.dispatcher.tracker.in_flight(),
        }
