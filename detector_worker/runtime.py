"""Everything the detector's agent needs at run time, started and stopped in order."""

import asyncio
import logging
from datetime import UTC, datetime

from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from detector_worker.baseline_table import BaselineFollower, BaselineTable
from detector_worker.metrics import DetectorMetrics
from detector_worker.pipeline import DetectorPipeline
from detector_worker.settings import DetectorSettings
from detector_worker.store import VerdictStore
from shared.db import open_pool
from shared.kafka import ensure_topics, make_producer, project_topics
from shared.migrations import apply_migrations
from shared.ops_http import start_ops_server

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class DetectorRuntime:
    """Owns the pool, the producer, the baseline follower and the ops HTTP server."""

    def __init__(self, settings: DetectorSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = DetectorMetrics.create(registry)
        self.table = BaselineTable()
        self.ready = asyncio.Event()
        self._pipeline: DetectorPipeline | None = None
        self._ops: web.AppRunner | None = None
        self._pool: AsyncConnectionPool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._follower: BaselineFollower | None = None

    @property
    def pipeline(self) -> DetectorPipeline:
        if self._pipeline is None:
            raise RuntimeError("detector runtime is not started")
        return self._pipeline

    def health(self) -> dict[str, object]:
        status = "ok" if self.ready.is_set() else "starting"
        return {"status": status, "baseline_scopes": len(self.table)}

    async def start(self) -> None:
        s = self.settings
        self._ops = await start_ops_server(
            self.registry, self.health, s.metrics_host, s.metrics_port
        )
        await asyncio.to_thread(apply_migrations, s.database_url, s.database_schema)
        await ensure_topics(s.kafka_bootstrap_servers, project_topics(s))
        self._pool = pool = await open_pool(s.database_url, s.database_schema, max_size=4)
        self._producer = producer = make_producer(s.kafka_bootstrap_servers)
        await producer.start()
        self._follower = follower = BaselineFollower(
            s.kafka_bootstrap_servers, s.topic_baselines, self.table
        )
        await follower.start()
        # Score nothing before the table holds what the topic held at start-up.
        await asyncio.wait_for(follower.caught_up.wait(), s.baseline_catchup_timeout_seconds)
        self._pipeline = DetectorPipeline(
            s,
            s.scoring_config(),
            self.table,
            VerdictStore(pool, self.metrics),
            producer,
            self.metrics,
            utc_now,
        )
        log.info("detector ready", extra={"baseline_scopes": len(self.table)})
        self.ready.set()

    async def stop(self) -> None:
        self.ready.clear()
        if self._follower is not None:
            await self._follower.stop()
        if self._producer is not None:
            await self._producer.stop()  # flushes what is still buffered
        if self._pool is not None:
            await self._pool.close()
        if self._ops is not None:
            await self._ops.cleanup()
