"""PostgreSQL going silent (no error, no answer) while the detector writes a batch: the write
is given up at DATABASE_TIMEOUT_SECONDS and retried as in an outage, the batch neither
acknowledged nor dead-lettered meanwhile, and stored once when the database answers again.
It waited forever on the silent statement.

The silence is test_silent_database's relay between the detector and the shared PostgreSQL;
Kafka is the shared broker."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from detector_worker import store
from detector_worker.baseline_table import BaselineTable
from detector_worker.metrics import DetectorMetrics
from detector_worker.pipeline import DetectorPipeline
from detector_worker.publisher import KafkaPublisher
from detector_worker.records import RawRecord
from detector_worker.settings import DetectorSettings
from detector_worker.store import VerdictStore, open_store_pool
from schemas import Transaction, encode_model
from schemas.records import transaction_key
from shared.db import DatabaseSilent
from shared.kafka import RenewableProducer, make_producer
from tests.conftest import Isolated
from tests.faults.silent_relay import Relayed, relay, relayed
from tests.faults.test_silent_database import SilenceableRelay
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.faults
__all__ = ["relay", "relayed"]  # fixtures, used by name
WORKER = "detector"  # whose login the relay reaches

TIMEOUT = 1.0
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(params=["one statement", "copy"])
async def pipeline(
    relayed: Relayed,
    isolated: Isolated,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[DetectorPipeline, DetectorMetrics]]:
    """A pipeline writing through the relay, for both ways a batch is written."""
    if request.param == "copy":
        monkeypatch.setattr(store, "SMALL_BATCH", 0)
    url = relayed[1]
    settings = isolated.settings(DetectorSettings, database_url=url)
    metrics = DetectorMetrics.create(CollectorRegistry())
    pool = await open_store_pool(url, settings.database_schema, write_timeout=TIMEOUT)
    producer = RenewableProducer(lambda: make_producer(settings.kafka_bootstrap_servers))
    await producer.start()
    try:
        yield detector_pipeline(settings, pool, producer, metrics), metrics
    finally:
        await producer.stop()
        await pool.close()


def detector_pipeline(
    settings: DetectorSettings,
    pool: AsyncConnectionPool,
    producer: RenewableProducer,
    metrics: DetectorMetrics,
) -> DetectorPipeline:
    return DetectorPipeline(
        settings,
        settings.scoring_config(),
        BaselineTable(),
        VerdictStore(pool, metrics),
        KafkaPublisher(producer),
        metrics,
        lambda: NOW,
    )


def transaction() -> Transaction:
    return Transaction(
        id=uuid4(),
        amount=Decimal("12.50"),
        category="food",
        merchant="Cafe",
        transaction_date=NOW,
        received_at=NOW,
    )


def record(txn: Transaction, offset: int) -> RawRecord:
    return RawRecord("transactions", 0, offset, transaction_key(txn.id), encode_model(txn))


def retries(metrics: DetectorMetrics) -> float:
    return float(metrics.retries.labels(stage="persist")._value.get())


async def test_a_write_to_a_silent_database_is_retried_then_stored_once(
    pipeline: tuple[DetectorPipeline, DetectorMetrics],
    relay: SilenceableRelay,
    isolated: Isolated,
    db: Any,
) -> None:
    process, metrics = pipeline
    transactions = [transaction() for _ in range(5)]
    batch = [record(txn, offset) for offset, txn in enumerate(transactions)]
    relay.silence()
    started = time.monotonic()
    processing = asyncio.ensure_future(process.process(batch))
    # Given up at the bound and retried (it waited on the silent statement for good).
    while retries(metrics) == 0:
        assert time.monotonic() - started < TIMEOUT + 2, "the silent write was not given up"
        await asyncio.sleep(0.05)
    await asyncio.sleep(2 * TIMEOUT)  # a few more attempts into the silence
    # Not durable, so not returned: the caller commits no offset of the batch.
    assert not processing.done()
    assert db.execute("SELECT count(*) FROM transactions").fetchone() == (0,)

    relay.speak()
    await asyncio.wait_for(processing, 30)
    ids = {str(txn.id) for txn in transactions}
    stored = db.execute("SELECT id::text, count(*) FROM transactions GROUP BY id").fetchall()
    assert dict(stored) == dict.fromkeys(ids, 1)
    bootstrap = isolated.env["KAFKA_BOOTSTRAP_SERVERS"]
    verdicts = await read_all(bootstrap, isolated.topic("verdicts"))
    assert sorted(json.loads(r.value)["transaction_id"] for r in verdicts) == sorted(ids)
    assert await read_all(bootstrap, isolated.topic("dlq")) == []
    assert metrics.dead_letters.labels(reason="rejected_by_store")._value.get() == 0


async def test_a_new_connection_whose_database_goes_silent_is_given_up(
    relayed: Relayed, isolated: Isolated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's hook that gives a new connection its staging table: on a database that
    went silent right after accepting the connection it held one of the pool's few
    connecting workers for good."""
    relay, url = relayed
    monkeypatch.setattr(store, "_PREPARE_SECONDS", TIMEOUT)
    conn = await psycopg.AsyncConnection.connect(url, options=f"-c search_path={isolated.schema}")
    try:
        relay.silence()
        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT + 5):  # it waited for good
            with pytest.raises(DatabaseSilent):
                await store._prepare_connection(conn)
        assert time.monotonic() - started < TIMEOUT + 1
    finally:
        await conn.close()
