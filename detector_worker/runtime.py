"""Everything the detector's agent needs at run time, started and stopped in order."""

import asyncio
import gc
import logging
import time
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from faust.types import TP
from prometheus_client import CollectorRegistry, Gauge
from psycopg_pool import AsyncConnectionPool

from detector_worker.baseline_table import BaselineFollower, BaselineTable
from detector_worker.metrics import DetectorMetrics, baseline_age_seconds, consumer_lag
from detector_worker.pipeline import DetectorPipeline
from detector_worker.publisher import KafkaPublisher
from detector_worker.retry import StopCheck, never
from detector_worker.settings import DetectorSettings
from detector_worker.store import VerdictStore, open_store_pool
from shared.clock import utc_now
from shared.kafka import RenewableProducer, ensure_topics, make_producer, project_topics
from shared.migrations import prepare_schema
from shared.ops_http import start_ops_server

log = logging.getLogger(__name__)

# How often the consumer lag is refreshed, and how long one refresh may take: two small
# requests to the broker, cheap next to the stream itself.
LAG_REFRESH_SECONDS = 5.0
_LAG_TIMEOUT_SECONDS = 10.0
# A batch in hand for longer than this (retrying an outage, or waiting on a lock) makes
# /health answer 503 "stuck": consumption of the process's partitions has stopped.
STUCK_BATCH_SECONDS = 120.0


# Allocations (less deallocations) between two collections of the youngest generation;
# Python's default is 700. See settle_heap.
GC_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once the detector is started: what exists now (modules, Faust, the baseline table) is
    moved out of the cyclic collector's sight (`gc.freeze`), and the youngest generation is
    collected every 10,000 allocations instead of 700. A batch of 1,000 records holds ~20,000
    objects until it is done (records, models, rows), so at 700 the collector ran dozens of
    times a batch, each time walking survivors it could not free: ~5-6 µs a transaction
    (docs/performance.md, session 8). Garbage without cycles is freed at once either way.
    Garbage with cycles left from the start-up (or from an agent Faust restarts after a
    crash: this runs at each start) is collected first, never frozen."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


def detector_health(
    ready: bool, scopes: int, batch_seconds: float | None, stuck_after: float
) -> dict[str, object]:
    """The /health body: ok, starting, or stuck on one batch for longer than `stuck_after`."""
    if batch_seconds is not None and batch_seconds > stuck_after:
        return {"status": "stuck", "baseline_scopes": scopes, "batch_seconds": batch_seconds}
    return {"status": "ok" if ready else "starting", "baseline_scopes": scopes}


class AssignedConsumer(Protocol):
    """The part of Faust's consumer the lag probe reads (public Faust API)."""

    def assignment(self) -> set[TP]: ...

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]: ...


class GroupOffsets(Protocol):
    """The part of aiokafka's admin client the lag probe uses."""

    async def list_consumer_group_offsets(
        self,
        group_id: str,
        group_coordinator_id: int | None = None,
        partitions: list[TopicPartition] | None = None,
    ) -> dict[TopicPartition, OffsetAndMetadata]: ...


class ConsumerLagProbe:
    """Sets `detector_consumer_lag{topic,partition}` for the partitions this process owns.

    End offsets come from the Faust consumer; committed offsets from the broker, which holds
    the group's truth even while this process is stuck or has not committed yet. Summing the
    gauge over processes gives the group's lag: each partition is reported by its owner only.
    """

    def __init__(self, admin: GroupOffsets, group: str, topic: str, gauge: Gauge) -> None:
        self._admin = admin
        self._group = group
        self._topic = topic
        self._gauge = gauge

    async def refresh(self, consumer: AssignedConsumer) -> None:
        owned = sorted(tp for tp in consumer.assignment() if tp.topic == self._topic)
        lag: dict[int, int] = {}
        if owned:
            ends = await consumer.highwaters(*owned)
            committed = await self._admin.list_consumer_group_offsets(
                self._group, partitions=[TopicPartition(tp.topic, tp.partition) for tp in owned]
            )
            lag = consumer_lag(
                {tp.partition: end for tp, end in ends.items()},
                {tp.partition: meta.offset for tp, meta in committed.items()},
            )
        # No await from here on: a scrape never sees the gauge half rewritten. Clearing drops
        # the partitions a rebalance moved to another process.
        self._gauge.clear()
        for partition, value in lag.items():
            self._gauge.labels(topic=self._topic, partition=str(partition)).set(value)


class DetectorRuntime:
    """Owns the pool, the producer, the baseline follower and the ops HTTP server."""

    def __init__(
        self,
        settings: DetectorSettings,
        registry: CollectorRegistry,
        stop_requested: StopCheck = never,
        stuck_after_seconds: float = STUCK_BATCH_SECONDS,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._stop_requested = stop_requested
        self._stuck_after = stuck_after_seconds
        self.metrics = DetectorMetrics.create(registry)
        self.table = BaselineTable()
        self.ready = asyncio.Event()
        self._pipeline: DetectorPipeline | None = None
        self._ops: web.AppRunner | None = None
        self._pool: AsyncConnectionPool | None = None
        self._producer: RenewableProducer | None = None
        self._follower: BaselineFollower | None = None
        self._lag_probe: ConsumerLagProbe | None = None
        self._admin: AIOKafkaAdminClient | None = None
        # Evaluated on each scrape: always current, no timer needed.
        self.metrics.baseline_age.set_function(
            lambda: baseline_age_seconds(self.table.view, utc_now())
        )

    @property
    def pipeline(self) -> DetectorPipeline:
        if self._pipeline is None:
            raise RuntimeError("detector runtime is not started")
        return self._pipeline

    def health(self) -> dict[str, object]:
        started = self._pipeline.batch_started if self._pipeline else None
        batch_seconds = None if started is None else time.monotonic() - started
        return detector_health(
            self.ready.is_set(), len(self.table), batch_seconds, self._stuck_after
        )

    async def start(self) -> None:
        s = self.settings
        self._ops = await start_ops_server(
            self.registry, self.health, s.metrics_host, s.metrics_port
        )
        await asyncio.to_thread(prepare_schema, s)
        await ensure_topics(s.kafka_bootstrap_servers, project_topics(s))
        self._pool = pool = await open_store_pool(
            s.database_url, s.database_schema, write_timeout=s.database_timeout_seconds
        )
        # No linger: a batch's verdicts go out as whole record batches already, and lingering
        # would only add its 5 ms to every verdict's and alert's latency.
        producer = RenewableProducer(lambda: make_producer(s.kafka_bootstrap_servers, linger_ms=0))
        self._producer = producer
        await producer.start()
        self._follower = follower = BaselineFollower(
            s.kafka_bootstrap_servers, s.topic_baselines, self.table
        )
        await follower.start()
        # Score nothing before the table holds what the topic held at start-up.
        await asyncio.wait_for(follower.caught_up.wait(), s.baseline_catchup_timeout_seconds)
        self._admin = admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap_servers)
        await admin.start()
        self._lag_probe = ConsumerLagProbe(
            admin, s.consumer_group, s.topic_transactions, self.metrics.consumer_lag
        )
        self._pipeline = DetectorPipeline(
            s,
            s.scoring_config(),
            self.table,
            VerdictStore(pool, self.metrics),
            KafkaPublisher(producer),
            self.metrics,
            utc_now,
            self._stop_requested,
        )
        log.info("detector ready", extra={"baseline_scopes": len(self.table)})
        self.ready.set()

    async def refresh_lag(self, consumer: AssignedConsumer) -> None:
        """Refresh the consumer-lag gauge; a failure is logged and never stops the detector."""
        if self._lag_probe is None or not self.ready.is_set():
            return
        try:
            async with asyncio.timeout(_LAG_TIMEOUT_SECONDS):
                await self._lag_probe.refresh(consumer)
        except Exception:
            # The gauge keeps its last values and goes stale; the stream is unaffected.
            log.warning("consumer lag refresh failed", exc_info=True)

    async def stop(self) -> None:
        self.ready.clear()
        self._lag_probe = None
        if self._admin is not None:
            await self._admin.close()
        if self._follower is not None:
            await self._follower.stop()
        if self._producer is not None:
            await self._producer.stop()  # flushes what is still buffered
        if self._pool is not None:
            await self._pool.close()
        if self._ops is not None:
            await self._ops.cleanup()
