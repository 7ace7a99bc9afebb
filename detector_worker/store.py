"""Writing scored transactions and their alerts to PostgreSQL, idempotently.

A replayed record (after a crash or a rebalance) hits ON CONFLICT DO NOTHING: the first
write wins, nothing is doubled.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from psycopg_pool import AsyncConnectionPool

from detector_worker.metrics import DetectorMetrics
from schemas import Alert, Transaction, Verdict
from shared.db import columns, timed

# Alert ids derive from the transaction id, so a replay produces the same alert.
_ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "https://jalytics.io/alerts")

# One statement per batch (arrays unnested server-side): one round trip, and the rollup
# trigger of migration 002 runs once per batch instead of once per row.
_INSERT_TRANSACTIONS = """
INSERT INTO transactions (
    id, amount, currency, category, merchant, transaction_date, received_at, account_id,
    client_transaction_id, anomaly, severity, rule, z_score, baseline_id, scored_at
)
SELECT * FROM unnest(
    %s::uuid[], %s::numeric[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
    %s::timestamptz[], %s::text[], %s::text[], %s::boolean[], %s::text[], %s::text[],
    %s::double precision[], %s::uuid[], %s::timestamptz[]
)
ON CONFLICT (id) DO NOTHING
"""

_INSERT_ALERTS = """
INSERT INTO alerts (
    id, transaction_id, severity, rule, alert_message, z_score, baseline_id, created_at
)
SELECT * FROM unnest(
    %s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::double precision[],
    %s::uuid[], %s::timestamptz[]
)
ON CONFLICT (transaction_id) DO NOTHING
"""


@dataclass(frozen=True)
class Scored:
    transaction: Transaction
    verdict: Verdict


def alert_id(transaction_id: UUID) -> UUID:
    return uuid5(_ALERT_NAMESPACE, str(transaction_id))


def make_alert(scored: Scored) -> Alert | None:
    """The alert an anomalous verdict yields (None for a normal one)."""
    txn, verdict = scored.transaction, scored.verdict
    if not verdict.anomaly or verdict.severity is None or verdict.rule is None:
        return None
    if verdict.baseline is None or verdict.message is None:
        return None
    return Alert(
        id=alert_id(txn.id),
        transaction_id=txn.id,
        severity=verdict.severity,
        alert_message=verdict.message,
        rule=verdict.rule,
        z_score=verdict.z_score,
        baseline=verdict.baseline,
        amount=txn.amount,
        currency=txn.currency,
        category=txn.category,
        merchant=txn.merchant,
        transaction_date=txn.transaction_date,
        created_at=verdict.scored_at,
    )


def _transaction_row(scored: Scored) -> tuple[object, ...]:
    txn, verdict = scored.transaction, scored.verdict
    return (
        txn.id,
        txn.amount,
        txn.currency,
        txn.category,
        txn.merchant,
        txn.transaction_date,
        txn.received_at,
        txn.account_id,
        txn.client_transaction_id,
        verdict.anomaly,
        verdict.severity,
        verdict.rule,
        verdict.z_score,
        verdict.baseline.id if verdict.baseline else None,
        verdict.scored_at,
    )


def _alert_row(alert: Alert) -> tuple[object, ...]:
    return (
        alert.id,
        alert.transaction_id,
        alert.severity,
        alert.rule,
        alert.alert_message,
        alert.z_score,
        alert.baseline.id,
        alert.created_at,
    )


class VerdictStore:
    def __init__(self, pool: AsyncConnectionPool, metrics: DetectorMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def persist(self, batch: Sequence[Scored], alerts: Sequence[Alert]) -> None:
        """Write a batch in one transaction: one statement for the transactions, one for alerts."""
        async with self._pool.connection() as conn, conn.transaction():
            async with timed(self._metrics.db_query_duration, "insert_transactions"):
                await conn.execute(
                    _INSERT_TRANSACTIONS, columns([_transaction_row(s) for s in batch], 15)
                )
            if alerts:
                async with timed(self._metrics.db_query_duration, "insert_alerts"):
                    await conn.execute(_INSERT_ALERTS, columns([_alert_row(a) for a in alerts], 8))
