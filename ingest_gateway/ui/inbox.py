"""The inbox: alerts newest first under the chosen filters, counts per status, cursor paging,
and `GET /ui/inbox/updates` that the page polls for alerts newer than the ones it shows."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from ingest_gateway.errors import Rejection
from ingest_gateway.paging import Cursor
from ingest_gateway.ui.filters import PAGE_SIZE, SEVERITIES, STATUSES, WITHIN, InboxFilters
from ingest_gateway.ui.keys import READS
from ingest_gateway.ui.render import page

# A poll returns at most this many new alerts; past it the page offers a reload.
POLL_LIMIT = 50


def _page_params(filters: InboxFilters, now: datetime, limit: int) -> dict[str, object]:
    after = filters.cursor
    return {
        **filters.params(now),
        "after_created": after.created_at if after else None,
        "after_id": after.id if after else None,
        "newer_created": None,
        "newer_id": None,
        "limit": limit,
    }


async def inbox(request: web.Request) -> web.Response:
    filters, now = InboxFilters.parse(request.query), datetime.now(UTC)
    reads = request.app[READS]
    rows = await reads.inbox(_page_params(filters, now, PAGE_SIZE + 1))
    alerts, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    next_query = (
        filters.query_string(cursor=Cursor(alerts[-1]["created_at"], alerts[-1]["id"]))
        if more
        else None
    )
    context = {
        "alerts": alerts,
        "filters": filters,
        "counts": await reads.counts(filters.params(now), STATUSES),
        "statuses": STATUSES,
        "severities": SEVERITIES,
        "windows": list(WITHIN),
        "next_query": next_query,
        "first_page": filters.cursor is None,
        "newest": _marker(alerts[0]) if alerts else "",
    }
    return page(request, "inbox.html", context)


def _marker(row: dict[str, Any]) -> str:
    """What the page sends back when polling: the newest alert it shows."""
    return Cursor(row["created_at"], row["id"]).encode()


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (
            value.isoformat()
            if isinstance(value, datetime)
            else str(value)
            if isinstance(value, UUID)
            else value
        )
        for key, value in row.items()
    }


async def inbox_updates(request: web.Request) -> web.Response:
    """Alerts newer than the marker `newer` (the newest the page shows) under the page's
    filters, and fresh counts. The page builds the rows with textContent: data never becomes
    markup."""
    filters, now = InboxFilters.parse(request.query), datetime.now(UTC)
    reads = request.app[READS]
    params = _page_params(filters, now, POLL_LIMIT)
    try:
        marker = Cursor.decode(request.query["newer"]) if request.query.get("newer") else None
    except Rejection:  # a forged marker: nothing is newer than nothing
        marker = None
    if marker is not None:
        params |= {"newer_created": marker.created_at, "newer_id": marker.id}
    rows = await reads.inbox(params)  # without a marker: the newest (the page showed none)
    body = {
        "alerts": [_json_row(row) for row in rows],
        "counts": await reads.counts(filters.params(now), STATUSES),
        "newest": _marker(rows[0]) if rows else None,
    }
    return web.json_response(body)
