"""The detector's batch decision, without Kafka or PostgreSQL: every record is scored once or
dead-lettered, an alert exactly for each anomalous verdict, the same decision on a replay."""

import math
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.support import index, settings_from
from detector_worker.decision import BatchDecision, alert_id, decide, refuse_conflicts
from detector_worker.records import RawRecord
from detector_worker.settings import DetectorSettings
from schemas import Baseline, BaselineScope, ScopeKind, Transaction, encode_model

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
# The production scoring defaults, whatever they are.
CONFIG = settings_from(DetectorSettings, {"DATABASE_URL": "postgresql://u@db/j"}).scoring_config()
FOOD = index(
    [
        Baseline(
            id=uuid4(),
            scope=BaselineScope(kind=ScopeKind.CATEGORY, name="food", currency="USD"),
            count=1000,
            mean=100,
            stddev=10,
            log_mean=math.log(100),
            log_stddev=0.1,
            window_days=30,
            computed_at=NOW,
        )
    ]
)
POISON = [b"", b"{not json", b'{"schema_version": 9}', b'{"id": "x", "amount": "-3"}']


def txn(amount: str, category: str = "food") -> Transaction:
    return Transaction(
        id=uuid4(), amount=Decimal(amount), category=category, merchant="Cafe", transaction_date=NOW
    )


def record(value: bytes | None, partition: int = 0, offset: int = 0) -> RawRecord:
    return RawRecord("transactions", partition, offset, None, value)


def decided(records: list[RawRecord]) -> BatchDecision:
    return decide(records, FOOD, CONFIG, NOW)


# A batch: transactions and poison on several partitions, then some of the transactions again
# (a producer retry can put the same transaction twice in one batch, even on another partition).
Sent = list[tuple[Transaction | bytes, int]]
transactions = st.builds(
    txn,
    amount=st.decimals(min_value=1, max_value=100_000, places=2).map(str),
    category=st.sampled_from(["food", "travel"]),
)
partitions = st.integers(0, 5)
firsts = st.lists(st.tuples(transactions | st.sampled_from(POISON), partitions), max_size=30)
resends = st.lists(st.tuples(st.integers(0, 29), partitions), max_size=10)
batches = st.builds(
    lambda sent, again: sent + [(sent[i][0], p) for i, p in again if i < len(sent)],
    firsts,
    resends,
)


def as_records(batch: Sent) -> list[RawRecord]:
    return [
        record(item if isinstance(item, bytes) else encode_model(item), partition, offset)
        for offset, (item, partition) in enumerate(batch)
    ]


@given(batches)
def test_every_record_is_scored_once_or_dead_lettered(batch: Sent) -> None:
    records = as_records(batch)
    decision = decided(records)
    first_partition: dict[UUID, int] = {}
    for item, partition in batch:
        if isinstance(item, Transaction):
            first_partition.setdefault(item.id, partition)
    assert [s.transaction.id for s in decision.scored] == list(first_partition)
    assert [d.record for d in decision.dead_letters] == [r for r in records if r.value in POISON]
    # Each verdict goes back to the partition its transaction first came from.
    assert [s.source.partition for s in decision.scored] == list(first_partition.values())


@given(batches)
def test_an_alert_for_exactly_the_anomalous_verdicts(batch: Sent) -> None:
    decision = decided(as_records(batch))
    anomalous = {s.transaction.id: s for s in decision.scored if s.verdict.anomaly}
    assert [a.transaction_id for a in decision.alerts] == list(anomalous)
    for alert in decision.alerts:
        scored = anomalous[alert.transaction_id]
        assert alert.id == alert_id(alert.transaction_id)
        assert alert.amount == scored.transaction.amount
        assert alert.severity == scored.verdict.severity
        assert alert.created_at == scored.verdict.scored_at == NOW


@given(batches)
def test_a_replayed_batch_gets_the_same_decision(batch: Sent) -> None:
    records = as_records(batch)
    assert decided(records) == decided(list(records))


def test_a_spike_is_alerted_with_its_explanation() -> None:
    normal, spike = txn("101"), txn("10000")
    decision = decided([record(encode_model(normal)), record(encode_model(spike), offset=1)])
    (alert,) = decision.alerts
    assert alert.transaction_id == spike.id
    assert alert.alert_message.startswith("Amount ")
    assert alert.baseline.scope.name == "food"
    assert not decision.dead_letters


def test_dead_letters_name_their_reason() -> None:
    decision = decided([record(value, offset=i) for i, value in enumerate(POISON)])
    reasons = [d.reason for d in decision.dead_letters]
    assert reasons == ["empty_value", "malformed_json", "unsupported_version", "invalid_schema"]
    assert not decision.scored and not decision.alerts


def test_f5_another_body_under_an_id_of_the_batch_is_dead_lettered() -> None:
    first = txn("15.00")
    again = first.model_copy(update={"received_at": NOW})  # restamped by a retry: the same
    other = first.model_copy(update={"amount": Decimal("90000.00")})
    decision = decided(
        [record(encode_model(t), offset=i) for i, t in enumerate((first, again, other))]
    )
    assert [s.transaction for s in decision.scored] == [first]
    ((letter),) = decision.dead_letters
    assert (letter.reason, letter.record.offset) == ("id_conflict", 2)
    assert not decision.alerts


def test_f5_refused_conflicts_become_dead_letters_without_alerts() -> None:
    normal, spike = txn("101"), txn("10000")
    records = [record(encode_model(normal)), record(encode_model(spike), offset=1)]
    decision = refuse_conflicts(decided(records), {spike.id})
    assert [s.transaction.id for s in decision.scored] == [normal.id]
    assert not decision.alerts
    assert [(d.reason, d.record) for d in decision.dead_letters] == [("id_conflict", records[1])]
