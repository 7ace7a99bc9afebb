"""The inbox's reads: alert pages and counts for the inbox, a scope's recent transactions,
and the overview's aggregates (an alert's detail is the workflow API's, alert_store.py).
Reads only: every change goes through the workflow API (`PATCH /alerts/{id}`,
`POST /suppressions`)."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

from ingest_gateway.metrics import GatewayMetrics
from shared.db import fetch_dicts

# Each query names only the filters in use: a catch-all `(%(x)s IS NULL OR ...)` would keep
# the planner from the index that fits (a merchant's transactions, say), and a filter that
# matches little would then scan every alert. The keyset cursor pages back in time; `newer`
# asks for what arrived after the newest row a page shows (the inbox's polling).
_CONDITIONS: dict[str, LiteralString] = {
    "status": "a.status = %(status)s",
    "severity": "a.severity = %(severity)s",
    "category": "t.category = %(category)s",
    "merchant": "t.merchant = %(merchant)s",
    "assignee": "a.assignee = %(assignee)s",
    "since": "a.created_at >= %(since)s",
    "after_created": "(a.created_at, a.id) < (%(after_created)s, %(after_id)s)",
    "newer_created": "(a.created_at, a.id) > (%(newer_created)s, %(newer_id)s)",
}
_INBOX_SELECT = """
SELECT a.id, a.severity, a.created_at, a.status, a.resolution, a.assignee, a.suppressed,
       a.alert_message, t.amount::text AS amount, t.currency, t.category, t.merchant
FROM alerts a JOIN transactions t ON t.id = a.transaction_id
WHERE """
_INBOX_ORDER = """
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""
# Counts per status under the other filters: one pass over the matching alerts (a sequential
# scan of 100,000 alerts takes ~30 ms); the join only when a transaction's field is filtered.
_COUNT_ALERTS = "SELECT a.status, count(*) AS n FROM alerts a WHERE "
_COUNT_JOINED = (
    "SELECT a.status, count(*) AS n FROM alerts a"
    " JOIN transactions t ON t.id = a.transaction_id WHERE "
)
_COUNT_END = " GROUP BY a.status"


def _where(params: Mapping[str, object]) -> LiteralString:
    chosen = [clause for name, clause in _CONDITIONS.items() if params.get(name) is not None]
    return " AND ".join(chosen) if chosen else "true"


# The scope's transactions over the baseline's window, newest first (the scope's index).
_RECENT_BY_CATEGORY = """
SELECT amount::float8 AS amount, transaction_date, severity FROM transactions
WHERE category = %s AND currency = %s AND transaction_date >= %s
ORDER BY transaction_date DESC LIMIT %s
"""
_RECENT_BY_MERCHANT = """
SELECT amount::float8 AS amount, transaction_date, severity FROM transactions
WHERE merchant = %s AND currency = %s AND transaction_date >= %s
ORDER BY transaction_date DESC LIMIT %s
"""
RECENT_LIMIT = 300
_TRANSACTIONS_PER_HOUR = """
SELECT date_trunc('hour', transaction_date) AS hour, count(*) AS n FROM transactions
WHERE transaction_date >= %(since)s GROUP BY 1 ORDER BY 1
"""
_ALERTS_PER_HOUR = """
SELECT date_trunc('hour', created_at) AS hour, count(*) AS n FROM alerts
WHERE created_at >= %(since)s GROUP BY 1 ORDER BY 1
"""
_CATEGORY_SHARE = """
SELECT t.category, count(*) AS transactions, count(a.id) AS alerts
FROM transactions t LEFT JOIN alerts a ON a.transaction_id = t.id
WHERE t.transaction_date >= %(since)s
GROUP BY t.category ORDER BY count(a.id) DESC, t.category LIMIT 12
"""
_TOP_SCOPES = """
SELECT t.category, t.merchant, count(*) AS alerts FROM alerts a
JOIN transactions t ON t.id = a.transaction_id
WHERE a.created_at >= %(since)s
GROUP BY t.category, t.merchant ORDER BY count(*) DESC, t.category, t.merchant LIMIT 10
"""
_RESOLUTIONS = """
SELECT resolution, count(*) AS n FROM alerts
WHERE status = 'resolved' AND created_at >= %(since)s GROUP BY resolution ORDER BY resolution
"""


class UiReads:
    def __init__(self, pool: AsyncConnectionPool, metrics: GatewayMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def inbox(self, params: Mapping[str, object]) -> list[dict[str, Any]]:
        """Alerts newest first under the filters, cursor and limit `_CONDITIONS` names."""
        query = _INBOX_SELECT + _where(params) + _INBOX_ORDER
        return await self._query("ui_inbox", query, params)

    async def counts(
        self, filters: Mapping[str, object], statuses: tuple[str, ...]
    ) -> dict[str, int]:
        """Alerts per status under the filters (the status filter itself left out)."""
        params = {**filters, "status": None}
        joined = params.get("category") is not None or params.get("merchant") is not None
        query = (_COUNT_JOINED if joined else _COUNT_ALERTS) + _where(params) + _COUNT_END
        rows = await self._query("ui_inbox_counts", query, params)
        found = {row["status"]: int(row["n"]) for row in rows}
        return {status: found.get(status, 0) for status in statuses}

    async def recent(
        self, kind: str, name: str, currency: str, since: datetime
    ) -> list[dict[str, Any]]:
        query = _RECENT_BY_MERCHANT if kind == "merchant" else _RECENT_BY_CATEGORY
        return await self._query("ui_recent", query, (name, currency, since, RECENT_LIMIT))

    async def overview(self, since: datetime) -> dict[str, list[dict[str, Any]]]:
        params = {"since": since}
        return {
            "transactions_per_hour": await self._query(
                "ui_txn_hour", _TRANSACTIONS_PER_HOUR, params
            ),
            "alerts_per_hour": await self._query("ui_alert_hour", _ALERTS_PER_HOUR, params),
            "categories": await self._query("ui_categories", _CATEGORY_SHARE, params),
            "top_scopes": await self._query("ui_top_scopes", _TOP_SCOPES, params),
            "resolutions": await self._query("ui_resolutions", _RESOLUTIONS, params),
        }

    async def _query(
        self, name: str, query: LiteralString, params: tuple[object, ...] | Mapping[str, object]
    ) -> list[dict[str, Any]]:
        return await fetch_dicts(self._pool, self._metrics.db_query_duration, name, query, params)


OVERVIEW_WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7)}
