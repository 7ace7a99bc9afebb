"""One batch through the detector's pipeline, against the real database and broker."""

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from detector_worker import store
from detector_worker.baseline_table import BaselineTable
from detector_worker.decision import Scored
from detector_worker.metrics import DetectorMetrics
from detector_worker.pipeline import DetectorPipeline
from detector_worker.publisher import KafkaPublisher
from detector_worker.records import RawRecord
from detector_worker.scoring import ScoringConfig, format_sigma
from detector_worker.settings import DetectorSettings
from detector_worker.store import VerdictStore, open_store_pool
from schemas import Baseline, BaselineScope, ScopeKind, Transaction, Verdict, encode_model
from schemas.records import (
    DLQ_MESSAGE,
    DLQ_REASON,
    DLQ_SOURCE_OFFSET,
    DLQ_TRUNCATED,
    transaction_key,
)
from shared.kafka import RenewableProducer, make_producer
from tests.conftest import Isolated
from tests.kafka_helpers import DeadProducer, read_all

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@asynccontextmanager
async def built(
    isolated: Isolated, producer: RenewableProducer
) -> AsyncIterator[tuple[DetectorPipeline, DetectorMetrics]]:
    """A pipeline on the test's schema and topics, with the food baseline."""
    settings = isolated.settings(DetectorSettings)
    metrics = DetectorMetrics.create(CollectorRegistry())
    table = BaselineTable()
    scope = BaselineScope(kind=ScopeKind.CATEGORY, name="food", currency="USD")
    food = Baseline(
        id=uuid4(), scope=scope, count=100, mean=100, stddev=10, window_days=30, computed_at=NOW
    )
    table.apply(scope.key(), encode_model(food))
    pool = await open_store_pool(settings.database_url, settings.database_schema)
    await producer.start()
    try:
        store = VerdictStore(pool, metrics)
        config = settings.scoring_config()
        yield (
            DetectorPipeline(
                settings, config, table, store, KafkaPublisher(producer), metrics, lambda: NOW
            ),
            metrics,
        )
    finally:
        await producer.stop()
        await pool.close()


def new_producer(isolated: Isolated) -> RenewableProducer:
    return RenewableProducer(lambda: make_producer(isolated.env["KAFKA_BOOTSTRAP_SERVERS"]))


@pytest.fixture(params=["one statement", "copy"])
async def pipeline(
    isolated: Isolated, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[DetectorPipeline, DetectorMetrics]]:
    """Each test with both ways of writing a batch: one statement committed on its own (small
    batches without alerts), and binary COPY into the staging table (the rest)."""
    if request.param == "copy":
        monkeypatch.setattr(store, "SMALL_BATCH", 0)
    async with built(isolated, new_producer(isolated)) as ready:
        yield ready


RAW = RawRecord("transactions", 0, 0, b"key", b"{}")


def as_record(value: bytes, offset: int) -> RawRecord:
    return RawRecord("transactions", 0, offset, key_of(value), value)


def key_of(value: bytes) -> bytes:
    """The key a producer gives: the transaction's id; one fixed key for poison."""
    with suppress(ValueError, KeyError, TypeError):
        return transaction_key(UUID(json.loads(value)["id"]))
    return b"key"


def txn(amount: str, category: str = "food") -> Transaction:
    return Transaction(
        id=uuid4(),
        amount=Decimal(amount),
        category=category,
        merchant="Cafe",
        transaction_date=NOW,
        received_at=NOW,
    )


async def test_a_batch_is_persisted_alerted_and_published(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    process, _ = pipeline
    normal, spike = txn("105.00"), txn("160.01")
    await process.process([as_record(encode_model(t), i) for i, t in enumerate((normal, spike))])

    rows = db.execute(
        "SELECT id, amount, anomaly, severity FROM transactions ORDER BY amount"
    ).fetchall()
    assert [(r[1], r[2], r[3]) for r in rows] == [
        (Decimal("105.0000"), False, None),
        (Decimal("160.0100"), True, "critical"),
    ]
    alert = db.execute("SELECT transaction_id, severity, alert_message FROM alerts").fetchall()
    critical = format_sigma(ScoringConfig().tiers.critical)
    assert alert == [(spike.id, "critical", f"Amount exceeds {critical} baseline")]

    bootstrap = isolated.env["KAFKA_BOOTSTRAP_SERVERS"]
    alerts = await read_all(bootstrap, isolated.topic("alerts"))
    assert [json.loads(r.value)["transaction_id"] for r in alerts] == [str(spike.id)]
    verdicts = await read_all(bootstrap, isolated.topic("verdicts"))
    assert {json.loads(r.value)["transaction_id"] for r in verdicts} == {
        str(normal.id),
        str(spike.id),
    }


async def test_a_replayed_batch_doubles_nothing(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], db: Any
) -> None:
    process, _ = pipeline
    batch = [as_record(encode_model(t), i) for i, t in enumerate((txn("100"), txn("400")))]
    await process.process(batch)
    await process.process(batch)
    await process.process(batch + batch)  # and the same record twice inside one batch
    assert db.execute("SELECT count(*) FROM transactions").fetchone() == (2,)
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (1,)


async def test_poison_records_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    process, metrics = pipeline
    good = txn("99")
    poison = [
        b"{not json",
        b"",
        json.dumps({"schema_version": 9}).encode(),
        json.dumps({"id": "x", "amount": "-3"}).encode(),
    ]
    await process.process([as_record(v, i) for i, v in enumerate([*poison, encode_model(good)])])

    assert db.execute("SELECT id FROM transactions").fetchall() == [(good.id,)]
    dead = await read_all(isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("dlq"))
    assert [r.value for r in dead] == poison
    reasons = [dict(r.headers)[DLQ_REASON].decode() for r in dead]
    assert reasons == ["malformed_json", "empty_value", "unsupported_version", "invalid_schema"]
    assert all(dict(r.headers)[DLQ_SOURCE_OFFSET] for r in dead)
    assert metrics.dead_letters.labels(reason="malformed_json")._value.get() == 1


async def test_hostile_strings_are_stored_verbatim(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], db: Any
) -> None:
    process, _ = pipeline
    hostile = 'Robert\'); DROP TABLE transactions;-- ☃ "quoted" \\ 𝔘'
    await process.process([as_record(encode_model(txn("10", category=hostile)), 0)])
    assert db.execute("SELECT category FROM transactions").fetchone() == (hostile,)


async def test_an_offset_postgresql_cannot_hold_is_stored_as_its_instant(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], db: Any
) -> None:
    # RFC 3339 allows offsets up to ±23:59, PostgreSQL only ±15:59: such a record, 202 from
    # the gateway or written straight to the topic, failed its batch's write, and the
    # detector exited and replayed the same batch forever.
    process, _ = pipeline
    stated = {
        "transaction_date": "2026-03-01T23:59:00+23:59",
        "received_at": "2026-03-01T00:00:00-23:59",
    }
    record = json.loads(encode_model(txn("10"))) | stated
    await process.process([as_record(json.dumps(record).encode(), 0)])
    assert db.execute("SELECT transaction_date, received_at FROM transactions").fetchone() == (
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, tzinfo=UTC),
    )


# Constraints no valid transaction breaks today, added in the test's schema only: the stand-in
# for a value the schema lets through and PostgreSQL refuses (an offset over ±15:59 was one).
REFUSING_CONSTRAINTS = """
ALTER TABLE transactions
    ADD CONSTRAINT test_refused CHECK (merchant <> 'Refused'),
    ADD CONSTRAINT test_digits CHECK (
        CASE WHEN merchant LIKE 'Digits %' THEN substr(merchant, 8)::integer >= 0 ELSE true END
    )
"""


def at(merchant: str, amount: str) -> Transaction:
    return txn(amount).model_copy(update={"merchant": merchant})


async def test_rows_postgresql_refuses_are_dead_lettered_and_the_rest_is_stored(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    # Such a row failed its whole batch's write at every replay: the detector exited and
    # replayed it forever, and its partitions' stream stood still.
    db.execute(REFUSING_CONSTRAINTS)
    process, metrics = pipeline
    good, spike = txn("101"), txn("160.01")
    check, data = at("Refused", "102"), at("Digits x", "900")  # `data` would be critical
    alerted = [good, check, spike, data, txn("103")]
    await process.process([as_record(encode_model(t), i) for i, t in enumerate(alerted)])
    quiet = [txn("104"), at("Refused", "105")]  # no alert: the one-statement path too
    await process.process([as_record(encode_model(t), 5 + i) for i, t in enumerate(quiet)])

    stored = {row[0] for row in db.execute("SELECT id FROM transactions").fetchall()}
    kept = [alerted[0], alerted[2], alerted[4], quiet[0]]
    assert stored == {t.id for t in kept}
    assert db.execute("SELECT transaction_id FROM alerts").fetchall() == [(spike.id,)]
    bootstrap = isolated.env["KAFKA_BOOTSTRAP_SERVERS"]
    dead = await read_all(bootstrap, isolated.topic("dlq"))
    assert sorted(r.value for r in dead) == sorted(encode_model(t) for t in (check, data, quiet[1]))
    assert {dict(r.headers)[DLQ_REASON] for r in dead} == {b"rejected_by_store"}
    messages = {dict(r.headers)[DLQ_MESSAGE].decode() for r in dead}
    assert any("(23514)" in m and "test_refused" in m for m in messages)  # check_violation
    assert any("(22P02)" in m and "integer" in m for m in messages)  # invalid_text_representation
    alerts = await read_all(bootstrap, isolated.topic("alerts"))
    assert [json.loads(r.value)["transaction_id"] for r in alerts] == [str(spike.id)]
    verdicts = await read_all(bootstrap, isolated.topic("verdicts"))
    assert {json.loads(r.value)["transaction_id"] for r in verdicts} == {str(t.id) for t in kept}
    assert metrics.dead_letters.labels(reason="rejected_by_store")._value.get() == 3


async def test_verdicts_go_to_their_transactions_partition_in_whole_batches(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    process, _ = pipeline
    # Enough verdicts that they fill several record batches of the producer.
    by_partition = {partition: [txn("100") for _ in range(700)] for partition in (0, 2)}
    await process.process(
        [
            RawRecord("transactions", partition, offset, transaction_key(t.id), encode_model(t))
            for partition, batch in by_partition.items()
            for offset, t in enumerate(batch)
        ]
    )
    assert db.execute("SELECT count(*) FROM transactions").fetchone() == (1400,)
    verdicts = await read_all(isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("verdicts"))
    landed: dict[int, set[str]] = {}
    for record in verdicts:
        assert record.key == json.loads(record.value)["transaction_id"].encode()
        landed.setdefault(record.partition, set()).add(record.key.decode())
    assert landed == {p: {str(t.id) for t in batch} for p, batch in by_partition.items()}


async def test_a_producer_that_can_never_send_again_is_replaced(
    isolated: Isolated, db: Any
) -> None:
    bootstrap = isolated.env["KAFKA_BOOTSTRAP_SERVERS"]
    made: list[AIOKafkaProducer] = []

    def first_dead() -> AIOKafkaProducer:
        made.append(make_producer(bootstrap) if made else DeadProducer(bootstrap_servers=bootstrap))
        return made[-1]

    producer = RenewableProducer(first_dead)
    async with built(isolated, producer) as (process, _):
        spike = txn("160.01")
        await asyncio.wait_for(process.process([as_record(encode_model(spike), 0)]), 30)
        # Retrying with the dead one would have waited forever.
        assert producer.renewals == 1 and len(made) == 2 and producer.current is made[1]
    alerts = await read_all(isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("alerts"))
    assert [json.loads(r.value)["transaction_id"] for r in alerts] == [str(spike.id)]
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (1,)


async def test_f5_the_same_id_with_another_body_is_dead_lettered_never_alerted(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    process, metrics = pipeline
    first = txn("15.00")
    # The same id again, with an amount that would be a critical alert: in a later batch,
    # and within one batch.
    later = first.model_copy(update={"amount": Decimal("90000.00")})
    # And in a batch with no alert at all.
    quiet = first.model_copy(update={"amount": Decimal("16.00")})
    await process.process([as_record(encode_model(first), 0)])
    await process.process([as_record(encode_model(later), 1)])
    await process.process([as_record(encode_model(quiet), 1)])
    twin = txn("20.00")
    twin_spike = twin.model_copy(update={"amount": Decimal("90000.00")})
    await process.process(
        [as_record(encode_model(t), 2 + i) for i, t in enumerate((twin, twin_spike))]
    )

    stored = db.execute("SELECT id, amount FROM transactions ORDER BY amount").fetchall()
    assert stored == [(first.id, Decimal("15.0000")), (twin.id, Decimal("20.0000"))]
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    bootstrap = isolated.env["KAFKA_BOOTSTRAP_SERVERS"]
    dead = await read_all(bootstrap, isolated.topic("dlq"))
    # Keyed by their ids, the dead letters of two transactions lie in different partitions.
    assert sorted((dict(r.headers)[DLQ_REASON], r.value) for r in dead) == sorted(
        [
            (b"id_conflict", encode_model(later)),
            (b"id_conflict", encode_model(quiet)),
            (b"id_conflict", encode_model(twin_spike)),
        ]
    )
    assert await read_all(bootstrap, isolated.topic("alerts")) == []
    verdicts = await read_all(bootstrap, isolated.topic("verdicts"))
    assert sorted(json.loads(r.value)["anomaly"] for r in verdicts) == [False, False]
    assert metrics.dead_letters.labels(reason="id_conflict")._value.get() == 3


async def test_f2_a_dead_letter_too_large_for_kafka_is_written_shortened(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    process, _ = pipeline
    # Under Kafka's default 1 MiB limits as it was read; over them with the DLQ headers.
    huge, good = b"x" * 1_048_400, txn("99")
    await asyncio.wait_for(
        process.process([as_record(huge, 0), as_record(encode_model(good), 1)]), 30
    )
    assert db.execute("SELECT id FROM transactions").fetchall() == [(good.id,)]
    (dead,) = await read_all(isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("dlq"))
    headers = dict(dead.headers)
    assert headers[DLQ_REASON] == b"malformed_json"
    assert headers[DLQ_TRUNCATED] == b"1048400"
    assert 0 < len(dead.value) < len(huge) and huge.startswith(dead.value)


@pytest.mark.parametrize("small_batch", [store.SMALL_BATCH, 0], ids=["one statement", "copy"])
async def test_every_column_is_stored_exactly_by_both_write_paths(
    isolated: Isolated, db: Any, small_batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "SMALL_BATCH", small_batch)
    settings = isolated.settings(DetectorSettings)
    exact = txn("12345678901234.57").model_copy(
        update={"account_id": "a\\\"'\u00e9", "client_transaction_id": "c-1"}
    )
    scores = [math.inf, -math.inf, math.nan, 0.1 + 0.2]
    batch = [
        Scored(t, Verdict(transaction_id=t.id, anomaly=False, z_score=z, scored_at=NOW), RAW)
        for t, z in zip([exact, txn("1"), txn("2"), txn("3")], scores, strict=True)
    ]
    # As the detector's own role: each path needs no right beyond its grants.
    pool = await open_store_pool(isolated.worker_urls["detector"], settings.database_schema)
    try:
        writer = VerdictStore(pool, DetectorMetrics.create(CollectorRegistry()))
        persisted = await writer.persist(batch, [])
        # Replayed, one of them with another body: only that one is a conflict.
        changed = exact.model_copy(update={"amount": Decimal("1.00")})
        replay = [replace(batch[0], transaction=changed), *batch[1:]]
        replayed = await writer.persist(replay, [])
    finally:
        await pool.close()
    assert persisted.conflicts == set() and replayed.conflicts == {exact.id}
    row = db.execute(
        "SELECT amount, account_id, client_transaction_id, transaction_date, received_at, "
        "scored_at FROM transactions WHERE id = %s",
        (exact.id,),
    ).fetchone()
    assert row == (exact.amount, exact.account_id, "c-1", NOW, NOW, NOW)
    stored = dict(db.execute("SELECT id, z_score FROM transactions").fetchall())
    assert [stored[t.transaction.id] for t in batch[:2]] == scores[:2]
    assert math.isnan(stored[batch[2].transaction.id])
    assert stored[batch[3].transaction.id] == 0.1 + 0.2
