"""An alert's detail (`GET /alerts/{id}`) and its changes (`PATCH`), in PostgreSQL.

A PATCH locks the alert's row (SELECT ... FOR UPDATE), checks the version an If-Match names,
updates the row, appends its history and creates the suppression it asks for, in one
transaction; the answer is read in that transaction too, so it shows exactly what was
committed. Each unit of work, the wait for a connection included, ends within the pool's
timeout (DATABASE_TIMEOUT_SECONDS): past it, on a database gone silent, its connection is cut
and the caller gets an OperationalError (a 503): a COMMIT already on its way may or may not
have taken effect, as on any lost connection, and If-Match makes a retried PATCH safe.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString
from uuid import UUID

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.read_model import SELECT_TRANSACTION, with_probability
from ingest_gateway.suppression_store import NewSuppression, insert_suppression
from ingest_gateway.workflow import AlertState, Change, etag, if_match_holds, plan
from schemas.workflow import AlertDetail, AlertPatch, ResolutionGroup
from shared.db import bounded_connection, columns, query_dicts

_VERSION = "(SELECT count(*) FROM alert_history h WHERE h.alert_id = a.id) AS version"
_SELECT_ALERT: LiteralString = f"""
SELECT a.id, a.transaction_id, a.alert_message, a.severity, a.created_at, a.rule, a.z_score,
       t.amount::text AS amount, t.currency, t.category, t.merchant, t.transaction_date,
       a.status, a.resolution, a.assignee, a.suppressed, a.suppression_id, a.updated_at,
       a.baseline_id, {_VERSION}
FROM alerts a JOIN transactions t ON t.id = a.transaction_id
WHERE a.id = %s
"""
_SELECT_BASELINE = """
SELECT id, scope_kind, scope_name, currency, sample_count, mean::float8 AS mean,
       stddev::float8 AS stddev, log_mean, log_stddev, tail, window_days, computed_at,
       coalesce(window_end, (computed_at AT TIME ZONE 'UTC')::date) AS window_end
FROM baseline_history WHERE id = %s
"""
_SELECT_HISTORY = """
SELECT id, changed_at, actor, field, from_value, to_value, note
FROM alert_history WHERE alert_id = %s ORDER BY id
"""
_LOCK_ALERT: LiteralString = """
SELECT a.status, a.resolution, a.assignee, a.rule, t.category, t.merchant, t.currency
FROM alerts a JOIN transactions t ON t.id = a.transaction_id
WHERE a.id = %s
FOR UPDATE OF a
"""
# Its own statement, after the lock is held: in READ COMMITTED a statement that waited for a
# row lock re-reads the locked row but not a subquery, which keeps the snapshot taken before
# the wait. Counted in the locking statement, the version was the one before the change just
# committed, so concurrent PATCHes naming the same If-Match all passed (lost updates).
_CURRENT_VERSION = "SELECT count(*) AS version FROM alert_history WHERE alert_id = %s"
_UPDATE_ALERT = """
UPDATE alerts SET status = %s, resolution = %s, assignee = %s, updated_at = now()
WHERE id = %s
"""
_APPEND_HISTORY = """
INSERT INTO alert_history (alert_id, actor, field, from_value, to_value, note)
SELECT %s, %s, field, from_value, to_value, %s
FROM unnest(%s::text[], %s::text[], %s::text[]) AS c (field, from_value, to_value)
"""

# The labels a backtest needs: resolved alerts per scope and rule, by resolution.
_RESOLUTIONS = """
SELECT t.category, t.merchant, a.rule,
       count(*) FILTER (WHERE a.resolution = 'confirmed_fraud') AS confirmed_fraud,
       count(*) FILTER (WHERE a.resolution = 'false_positive') AS false_positive,
       count(*) FILTER (WHERE a.resolution = 'expected') AS expected
FROM alerts a JOIN transactions t ON t.id = a.transaction_id
WHERE a.status = 'resolved'
GROUP BY t.category, t.merchant, a.rule
ORDER BY t.category, t.merchant, a.rule
"""


class AlertNotFound(Exception):
    pass


class PreconditionFailed(Exception):
    """If-Match names another version than the alert's current one."""

    def __init__(self, current: str) -> None:
        super().__init__(current)
        self.current = current


@dataclass(frozen=True, slots=True)
class Applied:
    """What a PATCH committed: the alert as it now is, and the changes made."""

    alert: AlertDetail
    changes: list[Change]


class AlertStore:
    def __init__(self, pool: AsyncConnectionPool, metrics: GatewayMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def detail(self, alert_id: UUID) -> AlertDetail | None:
        async with bounded_connection(self._pool) as conn:
            return await self._read(conn, alert_id)

    async def resolutions(self) -> list[ResolutionGroup]:
        async with bounded_connection(self._pool) as conn:
            rows = await self._query(conn, "count_resolutions", _RESOLUTIONS, ())
        return [ResolutionGroup.model_validate(row) for row in rows]

    async def apply(
        self, alert_id: UUID, patch: AlertPatch, actor: str, if_match: str | None, now: datetime
    ) -> Applied:
        """Apply `patch` as `actor`. Raises AlertNotFound, PreconditionFailed, or
        workflow.TransitionRefused; nothing is written then."""
        async with bounded_connection(self._pool) as conn, conn.transaction():
            rows = await self._query(conn, "lock_alert", _LOCK_ALERT, (alert_id,))
            if not rows:
                raise AlertNotFound(alert_id)
            locked = rows[0]
            (counted,) = await self._query(conn, "alert_version", _CURRENT_VERSION, (alert_id,))
            if not if_match_holds(if_match, etag(counted["version"])):
                raise PreconditionFailed(etag(counted["version"]))
            current = AlertState(locked["status"], locked["resolution"], locked["assignee"])
            after, changes = plan(current, patch)
            if changes:
                await self._write(conn, alert_id, after, changes, patch.note, actor)
            if patch.suppress is not None:
                rule = NewSuppression.for_alert(locked, alert_id, patch.suppress, actor, now)
                await insert_suppression(conn, rule, self._metrics.db_query_duration)
            alert = await self._read(conn, alert_id)
        assert alert is not None  # locked above: it cannot have gone
        return Applied(alert, changes)

    async def _write(
        self,
        conn: AsyncConnection[Any],
        alert_id: UUID,
        after: AlertState,
        changes: list[Change],
        note: str | None,
        actor: str,
    ) -> None:
        update = (after.status, after.resolution, after.assignee, alert_id)
        await self._query(conn, "update_alert", _UPDATE_ALERT, update)
        rows = [(c.field, c.from_value, c.to_value) for c in changes]
        history = (alert_id, actor, note, *columns(rows, 3))
        await self._query(conn, "append_alert_history", _APPEND_HISTORY, history)

    async def _read(self, conn: AsyncConnection[Any], alert_id: UUID) -> AlertDetail | None:
        rows = await self._query(conn, "select_alert", _SELECT_ALERT, (alert_id,))
        if not rows:
            return None
        alert = with_probability(rows[0])
        (transaction,) = await self._query(
            conn, "select_transaction", SELECT_TRANSACTION, (alert["transaction_id"],)
        )
        baseline = await self._query(
            conn, "select_baseline", _SELECT_BASELINE, (alert["baseline_id"],)
        )
        history = await self._query(conn, "select_alert_history", _SELECT_HISTORY, (alert_id,))
        return AlertDetail.model_validate(
            alert
            | {
                "transaction": with_probability(transaction),
                "baseline": baseline[0] if baseline else None,
                "history": history,
            }
        )

    async def _query(
        self,
        conn: AsyncConnection[Any],
        name: str,
        query: LiteralString,
        params: tuple[object, ...],
    ) -> list[dict[str, Any]]:
        return await query_dicts(conn, self._metrics.db_query_duration, name, query, params)
