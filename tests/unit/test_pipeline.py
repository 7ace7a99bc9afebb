"""The detector's pipeline around the decision, with hand-written fakes for the database and
the broker: durable before it returns (persist, then publish), retries what is transient,
lets anything else out (so the batch is never committed) and counts only what is durable."""

import asyncio
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry
from psycopg import OperationalError
from psycopg.errors import CheckViolation

from benchmarks.support import settings_from
from detector_worker.baseline_table import BaselineTable
from detector_worker.decision import Scored, same_body
from detector_worker.metrics import DetectorMetrics
from detector_worker.pipeline import DetectorPipeline
from detector_worker.ports import OutgoingRecord, Persisted
from detector_worker.records import RawRecord
from detector_worker.retry import StopCheck, StopRequested, never
from detector_worker.runtime import detector_health
from detector_worker.settings import DetectorSettings
from schemas import Alert, Baseline, BaselineScope, ScopeKind, Transaction, encode_model
from schemas.records import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_TRUNCATED, transaction_key

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SETTINGS = settings_from(DetectorSettings, {"DATABASE_URL": "postgresql://u@db/j"})


class Effects:
    """What the fakes did, in order, shared by both."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.stored: list[Scored] = []
        self.alerts: list[Alert] = []
        self.sent: list[OutgoingRecord] = []


class FakeStore:
    """Keeps the first body of each id, as the table's primary key does."""

    def __init__(
        self, effects: Effects, failures: Sequence[Exception] = (), refuse: Collection[UUID] = ()
    ) -> None:
        self.effects = effects
        self.failures = list(failures)
        self.rows: dict[UUID, Transaction] = {}
        # Ids PostgreSQL would refuse (a constraint): the whole write fails, nothing stored.
        self.refuse = set(refuse)

    async def persist(self, batch: Sequence[Scored], alerts: Sequence[Alert]) -> Persisted:
        if self.failures:
            self.effects.log.append("persist failed")
            await hang_if(self.failures[0])
            raise self.failures.pop(0)
        if any(s.transaction.id in self.refuse for s in batch):
            self.effects.log.append("persist refused")
            raise CheckViolation("new row violates check constraint")
        self.effects.log.append("persisted")
        new = [s for s in batch if s.transaction.id not in self.rows]
        conflicts = {
            s.transaction.id
            for s in batch
            if s.transaction.id in self.rows
            and not same_body(s.transaction, self.rows[s.transaction.id])
        }
        self.rows |= {s.transaction.id: s.transaction for s in new}
        self.effects.stored += new
        self.effects.alerts += [a for a in alerts if a.transaction_id not in conflicts]
        return Persisted(conflicts)


class FakePublisher:
    def __init__(self, effects: Effects, failures: Sequence[Exception] = ()) -> None:
        self.effects = effects
        self.failures = list(failures)

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if self.failures:
            self.effects.log.append("publish failed")
            raise self.failures.pop(0)
        self.effects.log.append("published")
        self.effects.sent += records


def food_table() -> BaselineTable:
    table = BaselineTable()
    scope = BaselineScope(kind=ScopeKind.CATEGORY, name="food", currency="USD")
    food = Baseline(
        id=uuid4(), scope=scope, count=1000, mean=100, stddev=10, window_days=30, computed_at=NOW
    )
    table.apply(scope.key(), encode_model(food))
    return table


def pipeline(
    effects: Effects,
    store_failures: Sequence[Exception] = (),
    publish_failures: Sequence[Exception] = (),
    stop: StopCheck = never,
    refuse: Collection[UUID] = (),
) -> tuple[DetectorPipeline, DetectorMetrics]:
    metrics = DetectorMetrics.create(CollectorRegistry())
    built = DetectorPipeline(
        SETTINGS,
        SETTINGS.scoring_config(),
        food_table(),
        FakeStore(effects, store_failures, refuse),
        FakePublisher(effects, publish_failures),
        metrics,
        lambda: NOW,
        stop,
    )
    return built, metrics


def record(value: bytes, partition: int = 0, offset: int = 0) -> RawRecord:
    return RawRecord("transactions", partition, offset, None, value)


def txn(amount: str) -> Transaction:
    return Transaction(
        id=uuid4(), amount=Decimal(amount), category="food", merchant="Cafe", transaction_date=NOW
    )


def counted(metrics: DetectorMetrics) -> float:
    return float(metrics.transactions.labels(category="food")._value.get())


async def test_rows_are_stored_before_anything_is_published() -> None:
    effects = Effects()
    process, metrics = pipeline(effects)
    normal, spike = txn("101"), txn("10000")
    await process.process([record(encode_model(normal), 2), record(b"{", 1, 7)])
    await process.process([record(encode_model(spike), 1, 8)])

    assert effects.log == ["persisted", "published", "persisted", "published"]
    assert [s.transaction.id for s in effects.stored] == [normal.id, spike.id]
    assert [a.transaction_id for a in effects.alerts] == [spike.id]
    dead, verdict, alert, spike_verdict = effects.sent
    assert (dead.topic, dead.value) == (SETTINGS.topic_dlq, b"{")
    assert dict(dead.headers or [])[DLQ_REASON] == b"malformed_json"
    assert dict(dead.headers or [])[DLQ_SOURCE_OFFSET] == b"7"
    # A verdict goes back to the partition number its transaction came from.
    assert (verdict.topic, verdict.key, verdict.co_partition) == (
        SETTINGS.topic_verdicts,
        transaction_key(normal.id),
        2,
    )
    assert (alert.topic, alert.key) == (SETTINGS.topic_alerts, transaction_key(spike.id))
    assert spike_verdict.co_partition == 1
    assert counted(metrics) == 2


async def test_transient_failures_are_retried_in_order() -> None:
    effects = Effects()
    process, metrics = pipeline(
        effects,
        store_failures=[OperationalError("database restarting")],
        publish_failures=[KafkaConnectionError()],
    )
    await process.process([record(encode_model(txn("101")))])
    assert effects.log == ["persist failed", "persisted", "publish failed", "published"]
    for stage in ("persist", "publish"):
        assert metrics.retries.labels(stage=stage)._value.get() == 1


async def test_an_unexpected_error_escapes_and_nothing_after_it_happens() -> None:
    effects = Effects()
    process, metrics = pipeline(effects, store_failures=[ValueError("a bug")])
    with pytest.raises(ValueError, match="a bug"):
        await process.process([record(encode_model(txn("101")))])
    # Not published, not counted: the caller leaves without committing the batch's offsets.
    assert effects.log == ["persist failed"]
    assert counted(metrics) == 0


async def test_a_batch_of_dead_letters_only_writes_no_rows() -> None:
    effects = Effects()
    process, metrics = pipeline(effects)
    await process.process([record(b"", offset=3)])
    assert effects.log == ["published"]
    assert [r.topic for r in effects.sent] == [SETTINGS.topic_dlq]
    assert metrics.dead_letters.labels(reason="empty_value")._value.get() == 1


async def test_f5_a_stored_id_with_another_body_is_dead_lettered_never_alerted() -> None:
    effects = Effects()
    process, metrics = pipeline(effects)
    first = txn("15.00")
    spike = first.model_copy(update={"amount": Decimal("90000.00")})
    await process.process([record(encode_model(first))])
    await process.process([record(encode_model(spike), offset=1)])
    assert [s.transaction for s in effects.stored] == [first]
    assert effects.alerts == []
    topics = [(r.topic, dict(r.headers or []).get(DLQ_REASON)) for r in effects.sent]
    assert topics == [(SETTINGS.topic_verdicts, None), (SETTINGS.topic_dlq, b"id_conflict")]
    assert metrics.dead_letters.labels(reason="id_conflict")._value.get() == 1


async def test_a_row_postgresql_refuses_is_dead_lettered_and_the_rest_stored() -> None:
    effects = Effects()
    normal, spike, refused = txn("101"), txn("10000"), txn("20000")
    process, metrics = pipeline(effects, refuse={refused.id})
    batch = [normal, refused, spike]
    await process.process([record(encode_model(t), offset=i) for i, t in enumerate(batch)])
    # Refused whole, then in halves: [normal] stored, [refused, spike] refused, then each.
    assert effects.log == [
        "persist refused",
        "persisted",
        "persist refused",
        "persist refused",
        "persisted",
        "published",
    ]
    assert [s.transaction for s in effects.stored] == [normal, spike]
    assert [a.transaction_id for a in effects.alerts] == [spike.id]
    sent = [(r.topic, r.key, dict(r.headers or []).get(DLQ_REASON)) for r in effects.sent]
    assert sent == [
        (SETTINGS.topic_dlq, None, b"rejected_by_store"),
        (SETTINGS.topic_alerts, transaction_key(spike.id), None),
        (SETTINGS.topic_verdicts, transaction_key(normal.id), None),
        (SETTINGS.topic_verdicts, transaction_key(spike.id), None),
    ]
    assert effects.sent[0].value == encode_model(refused)
    assert dict(effects.sent[0].headers or [])[DLQ_SOURCE_OFFSET] == b"1"
    assert metrics.dead_letters.labels(reason="rejected_by_store")._value.get() == 1
    assert counted(metrics) == 2


class Hanging(Exception):
    """Put in a fake's failures: that attempt never ends (a statement waiting on a lock)."""


class SlowToCancel(Hanging):
    """Hangs, and takes seconds to end once cancelled: psycopg asking a database gone silent
    to cancel the statement in flight (up to 10 s)."""


async def hang_if(failure: Exception) -> None:
    if isinstance(failure, SlowToCancel):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(5)
            raise
    if isinstance(failure, Hanging):
        await asyncio.Event().wait()


async def test_f12_a_stop_while_retrying_leaves_the_batch_unacknowledged() -> None:
    for failures in (
        [OperationalError("down")] * 100,
        [OperationalError("down"), Hanging()],
        [OperationalError("down"), SlowToCancel()],  # the stop does not wait for it
    ):
        effects, stop = Effects(), asyncio.Event()
        process, metrics = pipeline(effects, store_failures=failures, stop=stop.is_set)
        batch = asyncio.create_task(process.process([record(encode_model(txn("101")))]))
        await asyncio.sleep(0.5)  # retrying by now
        stop.set()
        with pytest.raises(StopRequested):
            await asyncio.wait_for(batch, 2)
        assert "published" not in effects.log and counted(metrics) == 0


async def test_f2_a_record_kafka_refuses_is_not_retried_but_dead_letters_go_bare() -> None:
    effects = Effects()
    process, metrics = pipeline(effects, publish_failures=[MessageSizeTooLargeError()])
    good = txn("101")
    await asyncio.wait_for(process.process([record(b"{" * 5000), record(encode_model(good))]), 5)
    assert effects.log == ["persisted", "publish failed", "published"]
    dead = effects.sent[0]
    assert dead.value == b"" and dict(dead.headers or [])[DLQ_TRUNCATED] == b"5000"
    assert [r.topic for r in effects.sent] == [SETTINGS.topic_dlq, SETTINGS.topic_verdicts]
    assert metrics.retries.labels(stage="publish")._value.get() == 0


async def test_f2_a_batch_stuck_longer_than_the_bound_reports_unhealthy() -> None:
    effects = Effects()
    process, _ = pipeline(effects, store_failures=[Hanging()])
    assert process.batch_started is None
    batch = asyncio.create_task(process.process([record(encode_model(txn("101")))]))
    await asyncio.sleep(0.1)
    started = process.batch_started
    assert started is not None
    assert detector_health(True, 1, time.monotonic() - started, 120)["status"] == "ok"
    assert detector_health(True, 1, time.monotonic() + 121 - started, 120)["status"] == "stuck"
    assert detector_health(True, 1, None, 120)["status"] == "ok"
    batch.cancel()
    await asyncio.gather(batch, return_exceptions=True)
    assert process.batch_started is None
