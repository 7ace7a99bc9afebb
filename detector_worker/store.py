"""Writing scored transactions and their alerts to PostgreSQL, idempotently.

A replayed record (after a crash or a rebalance) hits ON CONFLICT DO NOTHING: the first
write wins, nothing is doubled. A record whose id is stored already with another body is
reported back, and its alert is not written.
"""

import asyncio
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from detector_worker.decision import BODY_FIELDS, Scored
from detector_worker.metrics import DetectorMetrics
from detector_worker.ports import Persisted
from schemas import Alert
from shared.db import DatabaseSilent, bounded_connection, columns, cut_at, open_pool, timed

# A batch is streamed with binary COPY into a per-connection temporary table, then moved
# with one INSERT ... SELECT: COPY is the cheapest way into PostgreSQL (far less client CPU than
# unnest() arrays, whose dumping psycopg does in Python; docs/performance.md), and the INSERT
# keeps the conflict handling COPY lacks. The rollup trigger of migration 002 runs once per batch.
_TRANSACTION_COLUMNS = (
    ("id", "uuid"),
    ("amount", "numeric"),
    ("currency", "text"),
    ("category", "text"),
    ("merchant", "text"),
    ("transaction_date", "timestamptz"),
    ("received_at", "timestamptz"),
    ("account_id", "text"),
    ("client_transaction_id", "text"),
    ("anomaly", "boolean"),
    ("severity", "text"),
    ("rule", "text"),
    ("z_score", "double precision"),
    ("baseline_id", "uuid"),
    ("scored_at", "timestamptz"),
)
_NAMES = ", ".join(name for name, _ in _TRANSACTION_COLUMNS)
_STAGING = "incoming_transactions"
# The detector may not create temporary tables: the owner's function of migration 008 makes
# it (shaped on transactions, emptied at each commit) and lets the detector fill it.
CREATE_STAGING = "SELECT prepare_transaction_staging()"
_COPY_TRANSACTIONS = f"COPY {_STAGING} ({_NAMES}) FROM STDIN (FORMAT BINARY)"
_INSERT_TRANSACTIONS = f"""
INSERT INTO transactions ({_NAMES})
SELECT {_NAMES} FROM {_STAGING}
ON CONFLICT (id) DO NOTHING
"""

# A small batch without alerts is one statement on its own (autocommit): BEGIN, INSERT and
# COMMIT in one round trip instead of five (BEGIN, COPY, its data, INSERT, COMMIT), the
# batches of the verdict path at low load (docs/performance.md, "The detector on the verdict
# path, session 7"). Its rows go as one JSON parameter: psycopg dumps arrays (unnest) in
# Python at ~40 µs an array; past ~32 rows, building the JSON costs more than binary COPY.
SMALL_BATCH = 32
_FROM_JSON = "json_populate_recordset(NULL::transactions, %s::json) AS s"
_INSERT_JSON = f"""
INSERT INTO transactions ({_NAMES})
SELECT {_NAMES} FROM {_FROM_JSON}
ON CONFLICT (id) DO NOTHING
"""


def _conflicts_in(source: str) -> str:
    """Ids of the batch stored already with another body (what the client stated differs)."""
    return f"""
SELECT s.id FROM {source} JOIN transactions t USING (id)
WHERE ({", ".join(f"t.{name}" for name in BODY_FIELDS)})
    IS DISTINCT FROM ({", ".join(f"s.{name}" for name in BODY_FIELDS)})
"""


_CONFLICTS = _conflicts_in(f"{_STAGING} s")
_CONFLICTS_JSON = _conflicts_in(_FROM_JSON)

# Each alert is matched against the live suppression rules as it is inserted: the rules are
# few and read once per batch, alerts a small share of it (~0.1 ms of database time an
# alert, docs/performance.md), and the flag published is exactly the one stored. The flags
# come back for every alert of the batch, stored now or by an earlier attempt.
INSERT_ALERTS = """
WITH incoming AS (
    SELECT * FROM unnest(
        %s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::double precision[],
        %s::uuid[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::numeric[]
    ) AS i (id, transaction_id, severity, rule, alert_message, z_score, baseline_id,
            created_at, category, merchant, currency, amount)
), live AS MATERIALIZED (
    -- Read once per batch (the rules live at its oldest alert), then matched in memory.
    SELECT id, category, merchant, currency, min_amount, max_amount, expires_at
    FROM suppressions
    WHERE expires_at > (SELECT min(created_at) FROM incoming)
), matched AS (
    SELECT i.*, (
        SELECT s.id FROM live s
        WHERE s.expires_at > i.created_at
          AND (s.category IS NULL OR s.category = i.category)
          AND (s.merchant IS NULL OR s.merchant = i.merchant)
          AND (s.currency IS NULL OR s.currency = i.currency)
          AND (s.min_amount IS NULL OR i.amount >= s.min_amount)
          AND (s.max_amount IS NULL OR i.amount <= s.max_amount)
        ORDER BY s.expires_at DESC, s.id
        LIMIT 1
    ) AS suppression_id
    FROM incoming i
), stored AS (
    INSERT INTO alerts (
        id, transaction_id, severity, rule, alert_message, z_score, baseline_id, created_at,
        suppressed, suppression_id
    )
    SELECT id, transaction_id, severity, rule, alert_message, z_score, baseline_id, created_at,
           suppression_id IS NOT NULL, suppression_id
    FROM matched
    -- Every unique index an arbiter: an alert's id is derived from its transaction's, so two
    -- detectors storing the same alert at once (a rebalance) meet on both; with one target
    -- the loser's insert could fail on the other (a unique violation: dead-lettered).
    ON CONFLICT DO NOTHING
)
-- The flag as stored: this statement's own rows are not visible to it (one snapshot), so an
-- alert found here is one an earlier attempt stored, and its flag stands.
SELECT m.transaction_id,
       CASE WHEN a.transaction_id IS NULL THEN m.suppression_id ELSE a.suppression_id END
FROM matched m LEFT JOIN alerts a ON a.transaction_id = m.transaction_id
WHERE CASE WHEN a.transaction_id IS NULL THEN m.suppression_id ELSE a.suppression_id END
      IS NOT NULL
"""
ALERT_COLUMNS = 12


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
        alert.category,
        alert.merchant,
        alert.currency,
        alert.amount,
    )


def _json_rows(batch: Sequence[Scored]) -> str:
    """The rows as a JSON array of objects: numbers, ids and times as their exact text."""
    rows = [dict(zip(_COLUMN_NAMES, _transaction_row(item), strict=True)) for item in batch]
    for row in rows:
        for name in _FLOAT_COLUMNS:
            # JSON has no infinity: PostgreSQL reads it from text, as COPY would store it.
            if isinstance(value := row[name], float) and not math.isfinite(value):
                row[name] = _NON_FINITE[str(value)]
    return json.dumps(rows, default=_json_text)


_COLUMN_NAMES = [name for name, _ in _TRANSACTION_COLUMNS]
_FLOAT_COLUMNS = [name for name, kind in _TRANSACTION_COLUMNS if kind == "double precision"]
_NON_FINITE = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}


def _json_text(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # Decimal, UUID


# A new connection's staging table is made within this: a database that went silent right
# after accepting the connection must not hold one of the pool's few connecting workers.
_PREPARE_SECONDS = 10.0


async def _prepare_connection(conn: AsyncConnection[Any]) -> None:
    """Give a new pool connection its staging table (the pool's `configure` hook)."""
    deadline = asyncio.get_running_loop().time() + _PREPARE_SECONDS
    with cut_at(conn, deadline, _PREPARE_SECONDS) as cut:
        await conn.execute(CREATE_STAGING)
        await conn.commit()
    if cut.done:  # cut as the answer came: the pool must not keep this connection
        raise DatabaseSilent(f"database did not answer within {_PREPARE_SECONDS:g} s")


async def open_store_pool(
    database_url: str, schema: str, max_size: int = 4, write_timeout: float = 30.0
) -> AsyncConnectionPool:
    """The pool a VerdictStore needs: every connection has the staging table. A batch's write
    (the wait for a connection included) is given up after `write_timeout` seconds."""
    return await open_pool(
        database_url,
        schema,
        max_size=max_size,
        configure=_prepare_connection,
        connection_timeout=write_timeout,
    )


class VerdictStore:
    def __init__(self, pool: AsyncConnectionPool, metrics: DetectorMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def persist(self, batch: Sequence[Scored], alerts: Sequence[Alert]) -> Persisted:
        """Write a batch in one transaction, the transactions and then the alerts (marked
        suppressed under a live rule). The ids stored already with another body come back,
        and their alerts are left out. A write the database does not answer within the pool's
        timeout raises DatabaseSilent (an OperationalError: retried as any outage), its
        connection cut and discarded; whatever it committed, the retry finds and keeps."""
        if not alerts and len(batch) <= SMALL_BATCH:
            return await self._insert_alone(batch)
        async with bounded_connection(self._pool) as conn, conn.transaction():
            conflicts = await self._copy_transactions(conn, batch)
            return await self._with_alerts(conn, conflicts, alerts)

    async def _insert_alone(self, batch: Sequence[Scored]) -> Persisted:
        """The transactions in one statement, committed on its own; the conflicts looked for
        (a read) only when some row was not inserted."""
        rows = _json_rows(batch)
        async with bounded_connection(self._pool) as conn:
            await conn.set_autocommit(True)
            try:
                async with (
                    timed(self._metrics.db_query_duration, "insert_transactions"),
                    conn.cursor() as cursor,
                ):
                    await cursor.execute(_INSERT_JSON, (rows,))
                    if cursor.rowcount == len(batch):
                        return Persisted()
                    await cursor.execute(_CONFLICTS_JSON, (rows,))
                    return Persisted({row[0] for row in await cursor.fetchall()})
            finally:
                # A connection left in any other state is closed by the pool, never reused.
                if conn.pgconn.transaction_status == TransactionStatus.IDLE:
                    await conn.set_autocommit(False)

    async def _with_alerts(
        self, conn: AsyncConnection[Any], conflicts: set[UUID], alerts: Sequence[Alert]
    ) -> Persisted:
        alerts = [a for a in alerts if a.transaction_id not in conflicts]
        if not alerts:
            return Persisted(conflicts)
        async with (
            timed(self._metrics.db_query_duration, "insert_alerts"),
            conn.cursor() as cursor,
        ):
            rows = columns([_alert_row(a) for a in alerts], ALERT_COLUMNS)
            await cursor.execute(INSERT_ALERTS, rows)
            suppressed: dict[UUID, UUID] = dict(await cursor.fetchall())
        return Persisted(conflicts, suppressed)

    async def _copy_transactions(
        self, conn: AsyncConnection[Any], batch: Sequence[Scored]
    ) -> set[UUID]:
        async with (
            timed(self._metrics.db_query_duration, "insert_transactions"),
            conn.cursor() as cursor,
        ):
            async with cursor.copy(_COPY_TRANSACTIONS) as copy:
                copy.set_types([kind for _, kind in _TRANSACTION_COLUMNS])
                for item in batch:
                    await copy.write_row(_transaction_row(item))
            await cursor.execute(_INSERT_TRANSACTIONS)
            # Every row new: no conflict possible, and no query to find none.
            if cursor.rowcount == len(batch):
                return set()
            await cursor.execute(_CONFLICTS)
            return {row[0] for row in await cursor.fetchall()}
