"""`GET /alerts`: newest first, filtered, with an opaque keyset cursor.

Paging is `ingest_gateway.paging`'s keyset cursor.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from aiohttp import web
from multidict import MultiMapping

from ingest_gateway.context import READ_MODEL, SETTINGS
from ingest_gateway.errors import query_rejection
from ingest_gateway.paging import Cursor, given_once, page_limit, page_response
from ingest_gateway.settings import GatewaySettings
from schemas import Severity
from schemas.alert import AlertStatus

SEVERITIES = frozenset(get_args(Severity))
STATUSES = frozenset(get_args(AlertStatus))
# Every parameter but severity and status (comma lists, or repeated).
_SINGLE_VALUED = (
    "limit",
    "cursor",
    "category",
    "merchant",
    "since",
    "until",
    "assignee",
    "suppressed",
)


@dataclass(frozen=True)
class AlertQuery:
    limit: int
    after: Cursor | None = None
    severities: list[str] | None = None
    category: str | None = None
    merchant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    statuses: list[str] | None = None
    assignee: str | None = None
    suppressed: bool | None = None

    @classmethod
    def parse(cls, query: MultiMapping[str], settings: GatewaySettings) -> "AlertQuery":
        given_once(query, _SINGLE_VALUED)
        token = query.get("cursor")
        return cls(
            limit=page_limit(query.get("limit"), settings),
            after=Cursor.decode(token) if token else None,
            severities=_choices(query.getall("severity", []), "severity", SEVERITIES),
            category=_text(query.get("category"), "category"),
            merchant=_text(query.get("merchant"), "merchant"),
            since=_time(query.get("since"), "since"),
            until=_time(query.get("until"), "until"),
            statuses=_choices(query.getall("status", []), "status", STATUSES),
            assignee=_text(query.get("assignee"), "assignee"),
            suppressed=query_flag(query.get("suppressed"), "suppressed"),
        )

    def params(self) -> dict[str, object]:
        return {
            "after_created": self.after.created_at if self.after else None,
            "after_id": self.after.id if self.after else None,
            "severities": self.severities,
            "category": self.category,
            "merchant": self.merchant,
            "since": self.since,
            "until": self.until,
            "statuses": self.statuses,
            "assignee": self.assignee,
            "suppressed": self.suppressed,
            "limit": self.limit + 1,
        }


def _choices(values: list[str], field: str, known: frozenset[str]) -> list[str] | None:
    """Repeated and comma-separated values of a parameter, each one of `known`."""
    chosen = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted(set(chosen) - known)
    if unknown:
        raise query_rejection(
            field,
            f"unknown {field} {unknown[0]!r}; one of {', '.join(sorted(known))}",
            f"bad_{field}",
        )
    return chosen or None


def query_flag(raw: str | None, field: str) -> bool | None:
    """A true|false query parameter (None when absent); anything else is a 400."""
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise query_rejection(field, "must be true or false", "bad_flag")
    return raw == "true"


def _text(raw: str | None, field: str) -> str | None:
    if raw and "\x00" in raw:
        raise query_rejection(field, "must not contain NUL characters", "bad_text")
    return raw or None


def _time(raw: str | None, field: str) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise query_rejection(field, "must be an ISO 8601 date-time", "bad_time") from exc
    if value.tzinfo is None:
        raise query_rejection(field, "must carry a time zone (e.g. Z)", "bad_time")
    return value


async def get_alerts(request: web.Request) -> web.Response:
    query = AlertQuery.parse(request.query, request.app[SETTINGS])
    rows = await request.app[READ_MODEL].alert_page(query.params())
    return page_response(request, rows, query.limit)
