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

# Every filter is optional (NULL = not filtered). The keyset cursor pages back in time;
# `newer_*` asks for what arrived after the newest row a page shows (the inbox's polling).
_FILTERS = """
      (%(status)s::text IS NULL OR a.status = %(status)s::text)
  AND (%(severity)s::text IS NULL OR a.severity = %(severity)s::text)
  AND (%(category)s::text IS NULL OR t.category = %(category)s::text)
  AND (%(merchant)s::text IS NULL OR t.merchant = %(merchant)s::text)
  AND (%(assignee)s::text IS NULL OR a.assignee = %(assignee)s::text)
  AND (%(since)s::timestamptz IS NULL OR a.created_at >= %(since)s::timestamptz)
"""
_INBOX = (
    """
SELECT a.id, a.severity, a.created_at, a.status, a.resolution, a.assignee, a.suppressed,
       a.alert_message, t.amount::text AS amount, t.currency, t.category, t.merchant
FROM alerts a JOIN transactions t ON t.id = a.transaction_id
WHERE """
    + _FILTERS
    + """
  AND (%(after_created)s::timestamptz IS NULL
       OR (a.created_at, a.id) < (%(after_created)s::timestamptz, %(after_id)s::uuid))
  AND (%(newer_created)s::timestamptz IS NULL
       OR (a.created_at, a.id) > (%(newer_created)s::timestamptz, %(newer_id)s::uuid))
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""
)
# Counts per status under the other filters. Capped: past the cap the inbox says "10,000+"
# rather than counting every row of a large table on each poll.
COUNT_CAP = 10_000
_COUNTS = (
    """
SELECT status, count(*) AS n FROM (
    SELECT a.status FROM alerts a JOIN transactions t ON t.id = a.transaction_id
    WHERE a.status = %(one_status)s AND """
    + _FILTERS
    + """
    LIMIT %(cap)s
) AS capped GROUP BY status
"""
)
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
        """Alerts newest first under `_INBOX`'s filters, cursor and limit."""
        return await self._query("ui_inbox", _INBOX, params)

    async def counts(
        self, filters: Mapping[str, object], statuses: tuple[str, ...]
    ) -> dict[str, int]:
        """Alerts per status under the filters (the status filter itself left out), each
        count capped at COUNT_CAP; one index scan per status."""
        counts = {}
        for status in statuses:
            params = {**filters, "status": None, "one_status": status, "cap": COUNT_CAP}
            rows = await self._query("ui_inbox_counts", _COUNTS, params)
            counts[status] = int(rows[0]["n"]) if rows else 0
        return counts

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
