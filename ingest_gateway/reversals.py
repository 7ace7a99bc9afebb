"""Reversals (refunds): the gateway's own table, one reversal per transaction."""

from typing import Any, LiteralString
from uuid import UUID, uuid4

from psycopg.errors import ForeignKeyViolation, UniqueViolation
from psycopg_pool import AsyncConnectionPool

from ingest_gateway.metrics import GatewayMetrics
from schemas import ReversalOut
from shared.db import fetch_dicts

_INSERT_REVERSAL = """
INSERT INTO reversals (id, transaction_id, reason, idempotency_key, api_key)
VALUES (%s, %s, %s, %s, %s)
RETURNING id, transaction_id, reason, created_at
"""
_SELECT_REVERSAL = """
SELECT id, transaction_id, reason, created_at FROM reversals
WHERE transaction_id = %s AND api_key = %s AND idempotency_key = %s
"""


class UnknownTransaction(Exception):
    """No such transaction stored (yet: a new one may not be scored)."""


class AlreadyReversed(Exception):
    """The transaction has a reversal already."""


class Reversals:
    def __init__(self, pool: AsyncConnectionPool, metrics: GatewayMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def record(
        self, txn_id: UUID, reason: str | None, idempotency_key: str, caller: str
    ) -> ReversalOut:
        """Reverse `txn_id`; raises UnknownTransaction or AlreadyReversed.

        A reversal this caller already recorded under this key is answered again: its
        first request may have died before its answer was kept (database gone)."""
        insert = (uuid4(), txn_id, reason, idempotency_key, caller)
        try:
            rows = await self._query("insert_reversal", _INSERT_REVERSAL, insert)
        except ForeignKeyViolation as exc:
            raise UnknownTransaction from exc
        except UniqueViolation as exc:
            mine = (txn_id, caller, idempotency_key)
            rows = await self._query("select_reversal", _SELECT_REVERSAL, mine)
            if not rows:
                raise AlreadyReversed from exc
        return ReversalOut.model_validate(rows[0])

    async def _query(
        self, name: str, query: LiteralString, params: tuple[object, ...]
    ) -> list[dict[str, Any]]:
        return await fetch_dicts(self._pool, self._metrics.db_query_duration, name, query, params)
