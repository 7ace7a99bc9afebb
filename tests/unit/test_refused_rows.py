"""A batch PostgreSQL refuses for some of its rows: written again in halves until every
other row is stored and each refused one is named; an outage is never taken for a refusal."""

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from psycopg import OperationalError
from psycopg.errors import CheckViolation, NumericValueOutOfRange

from detector_worker.decision import Scored, make_alert
from detector_worker.ports import Persisted
from detector_worker.records import RawRecord
from detector_worker.refused_rows import persist_isolating_refused, refusal_message
from schemas import Alert, Baseline, BaselineScope, ScopeKind, Transaction, Verdict

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SCOPE = BaselineScope(kind=ScopeKind.CATEGORY, name="food", currency="USD")
BASELINE = Baseline(
    id=uuid4(), scope=SCOPE, count=100, mean=100, stddev=10, window_days=30, computed_at=NOW
)


def scored(anomaly: bool = False) -> Scored:
    txn = Transaction(
        id=uuid4(), amount=Decimal("10"), category="food", merchant="Cafe", transaction_date=NOW
    )
    verdict = Verdict(
        transaction_id=txn.id,
        anomaly=anomaly,
        severity="high" if anomaly else None,
        rule="zscore" if anomaly else None,
        message="Amount far off" if anomaly else None,
        baseline=BASELINE,
        z_score=5.0,
        scored_at=NOW,
    )
    return Scored(txn, verdict, RawRecord("transactions", 0, 0, None, b"{}"))


class RefusingStore:
    """Refuses a whole write holding any refused id, as one failed statement does; keeps
    what each successful write was given."""

    def __init__(self, refuse: Collection[UUID], outage_after: int | None = None) -> None:
        self.refuse = set(refuse)
        self.outage_after = outage_after
        self.calls = 0
        self.stored: list[UUID] = []
        self.alerted: list[UUID] = []

    async def persist(self, batch: Sequence[Scored], alerts: Sequence[Alert]) -> Persisted:
        self.calls += 1
        if self.outage_after is not None and self.calls > self.outage_after:
            raise OperationalError("server closed the connection unexpectedly")
        ids = [s.transaction.id for s in batch]
        assert {a.transaction_id for a in alerts} <= set(ids)  # an alert goes with its row
        if refused := [i for i in ids if i in self.refuse]:
            error = NumericValueOutOfRange if len(refused) % 2 else CheckViolation
            raise error(f"refused {len(refused)}")
        self.stored += ids
        self.alerted += [a.transaction_id for a in alerts]
        # What a real store reports per write, to be merged over the halves.
        return Persisted(conflicts={ids[0]}, suppressed={a.transaction_id: a.id for a in alerts})


def alerts_of(batch: Sequence[Scored]) -> list[Alert]:
    return [alert for alert in map(make_alert, batch) if alert is not None]


@pytest.mark.parametrize("bad_at", [(), (0,), (6,), (3,), (1, 2), (0, 6), (0, 1, 2, 3, 4, 5, 6)])
async def test_every_row_is_stored_or_named_refused(bad_at: tuple[int, ...]) -> None:
    batch = [scored(anomaly=i % 2 == 0) for i in range(7)]
    refused = {batch[i].transaction.id for i in bad_at}
    store = RefusingStore(refused)
    persisted = await persist_isolating_refused(store.persist, batch, alerts_of(batch))

    assert set(persisted.refused) == refused
    assert store.stored == [s.transaction.id for s in batch if s.transaction.id not in refused]
    good_alerts = [a.transaction_id for a in alerts_of(batch) if a.transaction_id not in refused]
    assert store.alerted == good_alerts
    assert set(persisted.suppressed) == set(good_alerts)
    assert persisted.conflicts <= set(store.stored)
    # One bad row costs about two writes a level, never one write a row.
    assert store.calls <= 1 + 2 * len(bad_at) * 3


async def test_a_batch_without_refusal_is_one_write() -> None:
    batch = [scored() for _ in range(5)]
    store = RefusingStore(refuse=())
    persisted = await persist_isolating_refused(store.persist, batch, [])
    assert store.calls == 1 and persisted.refused == {}


async def test_an_outage_while_halving_is_raised_never_a_refusal() -> None:
    batch = [scored() for _ in range(4)]
    store = RefusingStore({batch[3].transaction.id}, outage_after=2)
    with pytest.raises(OperationalError):
        await persist_isolating_refused(store.persist, batch, [])


async def test_an_outage_is_raised_at_once() -> None:
    store = RefusingStore(refuse=(), outage_after=0)
    with pytest.raises(OperationalError):
        await persist_isolating_refused(store.persist, [scored()], [])
    assert store.calls == 1


def test_the_message_is_postgresql_s_or_the_client_s() -> None:
    # Made here without a server: no diagnostics, so the error's own text.
    assert refusal_message(CheckViolation("boom")) == "refused by the database: boom"
