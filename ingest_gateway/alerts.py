"""`GET /alerts`: newest first, filtered, with an opaque keyset cursor.

The cursor is the (created_at, id) of the last alert returned: alerts inserted meanwhile
sort before it, so paging on is neither shifted nor duplicated by them.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import get_args
from uuid import UUID

from aiohttp import web
from multidict import MultiMapping

from ingest_gateway.context import READ_MODEL, SETTINGS
from ingest_gateway.errors import query_rejection
from ingest_gateway.settings import GatewaySettings
from schemas import Severity, decode_json
from schemas.alert import AlertStatus

SEVERITIES = frozenset(get_args(Severity))
STATUSES = frozenset(get_args(AlertStatus))
# An issued cursor is about 110 characters; anything far longer is not one of ours.
MAX_CURSOR_CHARS = 512
# ASCII digits only: str.isdigit() also admits "²" and "٣", which int() then refuses or reads.
_LIMIT = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: UUID

    def encode(self) -> str:
        raw = json.dumps({"t": self.created_at.isoformat(), "id": str(self.id)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            if len(token) > MAX_CURSOR_CHARS:
                raise ValueError("longer than any cursor this API issues")
            # decode_json bounds the nesting: json.loads would recurse on "[[[[...".
            body = decode_json(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            created_at = datetime.fromisoformat(body["t"])
            if created_at.tzinfo is None:
                raise ValueError("naive time")
            return cls(created_at, UUID(body["id"]))
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise query_rejection("cursor", "not a cursor this API issued", "bad_cursor") from exc


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
        token = query.get("cursor")
        return cls(
            limit=_limit(query.get("limit"), settings),
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


def _limit(raw: str | None, settings: GatewaySettings) -> int:
    if raw is None:
        return settings.alerts_default_limit
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= settings.alerts_max_limit:
        message = f"must be an integer from 1 to {settings.alerts_max_limit}"
        raise query_rejection("limit", message, "bad_limit")
    return int(raw)


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
    # One row more than the page: whether there is a next page.
    rows = await request.app[READ_MODEL].alert_page(query.params())
    items = rows[: query.limit]
    headers = {}
    if len(rows) > query.limit and items:
        token = Cursor(items[-1].created_at, items[-1].id).encode()
        headers["X-Next-Cursor"] = token
        next_query = {k: v for k, v in request.query.items() if k != "cursor"} | {"cursor": token}
        headers["Link"] = f'<{request.url.with_query(next_query).path_qs}>; rel="next"'
    return web.json_response([item.model_dump(mode="json") for item in items], headers=headers)
