"""Reversals (refunds): the gateway's own table, one reversal per transaction."""

from uuid import UUID, uuid4

from psycopg.errors import ForeignKeyViolation, UniqueViolation
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ingest_gateway.metrics import GatewayMetrics
from schemas import ReversalOut
from shared.db import timed

_INSERT_REVERSAL = """
INSERT INTO reversals (id, transaction_id, reason, idempotency_key, api_key)
VALUES (%s, %s, %s, %s, %s)
RETURNING id, transaction_id, reason, created_at
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
        """Reverse `txn_id`; raises UnknownTransaction or AlreadyReversed."""
        try:
            async with (
                self._pool.connection() as conn,
                conn.cursor(row_factory=dict_row) as cur,
                timed(self._metrics.db_query_duration, "insert_reversal"),
            ):
                await cur.execute(
                    _INSERT_REVERSAL, (uuid4(), txn_id, reason, idempotency_key, caller)
                )
                row = await cur.fetchone()
        except ForeignKeyViolation as exc:
            raise UnknownTransaction from exc
        except UniqueViolation as exc:
            raise AlreadyReversed from exc
        return ReversalOut.model_validate(row)
