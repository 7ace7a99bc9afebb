"""The gateway's reads of the detector's tables (transactions with their verdicts, alerts).

The detector owns those rows; the gateway only reads them, through this module, for
`GET /transactions/{id}` and `GET /alerts`.
"""

from collections.abc import Mapping
from typing import Any, LiteralString
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from ingest_gateway.metrics import GatewayMetrics
from schemas import AlertOut, TransactionOut
from schemas.rarity import probability_of
from shared.db import fetch_dicts

SELECT_TRANSACTION = """
SELECT t.id, t.amount::text AS amount, t.currency, t.category, t.merchant, t.transaction_date,
       t.received_at, t.account_id, t.client_transaction_id, t.anomaly, t.severity, t.rule,
       t.z_score, t.baseline_id, t.scored_at, a.id AS alert_id, a.alert_message,
       r.created_at AS reversed_at
FROM transactions t
LEFT JOIN alerts a ON a.transaction_id = t.id
LEFT JOIN reversals r ON r.transaction_id = t.id
WHERE t.id = %s
"""
# Keyset paging on (created_at, id); every filter is optional (NULL = not filtered).
_ALERT_PAGE = """
SELECT a.id, a.transaction_id, a.alert_message, a.severity, a.created_at, a.rule, a.z_score,
       t.amount::text AS amount, t.currency, t.category, t.merchant, t.transaction_date,
       a.status, a.resolution, a.assignee, a.suppressed, a.suppression_id
FROM alerts a JOIN transactions t ON t.id = a.transaction_id
WHERE (%(after_created)s::timestamptz IS NULL
       OR (a.created_at, a.id) < (%(after_created)s::timestamptz, %(after_id)s::uuid))
  AND (%(severities)s::text[] IS NULL OR a.severity = ANY(%(severities)s::text[]))
  AND (%(category)s::text IS NULL OR t.category = %(category)s::text)
  AND (%(merchant)s::text IS NULL OR t.merchant = %(merchant)s::text)
  AND (%(since)s::timestamptz IS NULL OR a.created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR a.created_at < %(until)s::timestamptz)
  AND (%(statuses)s::text[] IS NULL OR a.status = ANY(%(statuses)s::text[]))
  AND (%(assignee)s::text IS NULL OR a.assignee = %(assignee)s::text)
  AND (%(suppressed)s::boolean IS NULL OR a.suppressed = %(suppressed)s::boolean)
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""


# The rules whose z_score is the z-equivalent of a tail probability (the others' is a z).
_TAIL_RULES = frozenset({"tail", "low_variance"})


def with_probability(row: dict[str, Any]) -> dict[str, Any]:
    """The row with p = 1 - Phi(z): the detector stores the z-equivalent of p."""
    z = row.get("z_score")
    if row.get("rule") in _TAIL_RULES and z is not None:
        row["tail_probability"] = probability_of(z)
    return row


class ReadModel:
    def __init__(self, pool: AsyncConnectionPool, metrics: GatewayMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def transaction(self, txn_id: UUID) -> TransactionOut | None:
        """A stored transaction with its verdict, alert and reversal time; None until the
        detector has stored it."""
        rows = await self._query("select_transaction", SELECT_TRANSACTION, (txn_id,))
        return TransactionOut.model_validate(with_probability(rows[0])) if rows else None

    async def alert_page(self, params: Mapping[str, object]) -> list[AlertOut]:
        """Alerts newest first; `params` are the filters, keyset cursor and row limit that
        `_ALERT_PAGE` names."""
        rows = await self._query("select_alerts", _ALERT_PAGE, params)
        return [AlertOut.model_validate(with_probability(row)) for row in rows]

    async def _query(
        self, name: str, query: LiteralString, params: tuple[object, ...] | Mapping[str, object]
    ) -> list[dict[str, Any]]:
        return await fetch_dicts(self._pool, self._metrics.db_query_duration, name, query, params)
