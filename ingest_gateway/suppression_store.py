"""Suppression rules in PostgreSQL: created, listed, expired; never deleted (the audit trail
keeps every rule, and the alerts it marked point at it). Each statement, the wait for a
connection included, ends within the pool's timeout (DATABASE_TIMEOUT_SECONDS; see
shared.db.bounded_connection)."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, LiteralString
from uuid import UUID, uuid4

from prometheus_client import Histogram
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.paging import Cursor
from schemas.workflow import SuppressionIn, SuppressionOut, SuppressionWindow
from shared.db import bounded_connection, query_dicts

_COLUMNS = """
id, category, merchant, currency, min_amount::text AS min_amount,
max_amount::text AS max_amount, reason, expires_at, created_by, created_at, source_alert_id,
expires_at > now() AS active
"""
_INSERT: LiteralString = f"""
INSERT INTO suppressions (id, category, merchant, currency, min_amount, max_amount, reason,
                          expires_at, created_by, source_alert_id)
VALUES (%(id)s, %(category)s, %(merchant)s, %(currency)s, %(min_amount)s, %(max_amount)s,
        %(reason)s, %(expires_at)s, %(created_by)s, %(source_alert_id)s)
RETURNING {_COLUMNS}
"""
_LIST: LiteralString = f"""
SELECT {_COLUMNS} FROM suppressions
WHERE (%(include_expired)s OR expires_at > now())
  AND (%(after_created)s::timestamptz IS NULL
       OR (created_at, id) < (%(after_created)s::timestamptz, %(after_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s
"""
# Ends a rule now; one already over keeps its end (expiring twice changes nothing).
_EXPIRE: LiteralString = f"""
UPDATE suppressions SET expires_at = least(expires_at, now()) WHERE id = %(id)s
RETURNING {_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class NewSuppression:
    """A rule about to be stored (the columns of `suppressions`)."""

    id: UUID
    category: str | None
    merchant: str | None
    currency: str | None
    min_amount: Decimal | None
    max_amount: Decimal | None
    reason: str
    expires_at: datetime
    created_by: str
    source_alert_id: UUID | None = None

    @classmethod
    def from_request(cls, body: SuppressionIn, actor: str, now: datetime) -> "NewSuppression":
        return cls(
            uuid4(),
            body.category,
            body.merchant,
            body.currency,
            body.min_amount,
            body.max_amount,
            body.reason,
            body.ends(now),
            actor,
        )

    @classmethod
    def for_alert(
        cls,
        scope: Mapping[str, Any],
        alert_id: UUID,
        window: SuppressionWindow,
        actor: str,
        now: datetime,
    ) -> "NewSuppression":
        """The rule an `expected` alert asks for: its category, merchant and currency."""
        return cls(
            uuid4(),
            scope["category"],
            scope["merchant"],
            scope["currency"],
            None,
            None,
            window.reason,
            window.ends(now),
            actor,
            alert_id,
        )

    def params(self) -> dict[str, object]:
        return asdict(self)


async def insert_suppression(
    conn: AsyncConnection[Any], rule: NewSuppression, histogram: Histogram
) -> SuppressionOut:
    (row,) = await query_dicts(conn, histogram, "insert_suppression", _INSERT, rule.params())
    return SuppressionOut.model_validate(row)


class SuppressionStore:
    def __init__(self, pool: AsyncConnectionPool, metrics: GatewayMetrics) -> None:
        self._pool = pool
        self._histogram = metrics.db_query_duration

    async def create(self, rule: NewSuppression) -> SuppressionOut:
        async with bounded_connection(self._pool) as conn:
            return await insert_suppression(conn, rule, self._histogram)

    async def listing(
        self, include_expired: bool, limit: int, after: Cursor | None = None
    ) -> list[SuppressionOut]:
        """Rules newest first, after the keyset cursor `after`; at most `limit` rows."""
        params = {
            "include_expired": include_expired,
            "limit": limit,
            "after_created": after.created_at if after else None,
            "after_id": after.id if after else None,
        }
        rows = await self._query("select_suppressions", _LIST, params)
        return [SuppressionOut.model_validate(row) for row in rows]

    async def expire(self, suppression_id: UUID) -> SuppressionOut | None:
        """End the rule now (None: no such rule)."""
        rows = await self._query("expire_suppression", _EXPIRE, {"id": suppression_id})
        return SuppressionOut.model_validate(rows[0]) if rows else None

    async def _query(
        self, name: str, query: LiteralString, params: Mapping[str, object]
    ) -> list[dict[str, Any]]:
        async with bounded_connection(self._pool) as conn:
            return await query_dicts(conn, self._histogram, name, query, params)
