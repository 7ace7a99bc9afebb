"""The inbox's filters, read from its query string. A page is forgiving where the JSON API
is strict: a value it does not know is dropped (and said so), never a 400."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import get_args
from urllib.parse import urlencode

from multidict import MultiMapping

from ingest_gateway.errors import Rejection
from ingest_gateway.paging import Cursor
from schemas import Severity
from schemas.alert import AlertStatus

STATUSES: tuple[str, ...] = get_args(AlertStatus)
SEVERITIES: tuple[str, ...] = get_args(Severity)
# The time filter: alerts created within the last ...
WITHIN = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PAGE_SIZE = 50
# Free-text filters longer than any label are not labels.
_MAX_TEXT = 200


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if value and len(value) <= _MAX_TEXT and "\x00" not in value else None


def _choice(value: str | None, allowed: tuple[str, ...] | dict[str, timedelta]) -> str | None:
    return value if value in allowed else None


@dataclass(frozen=True, slots=True)
class InboxFilters:
    status: str | None = None
    severity: str | None = None
    category: str | None = None
    merchant: str | None = None
    assignee: str | None = None
    within: str | None = None
    cursor: Cursor | None = None

    @classmethod
    def parse(cls, query: MultiMapping[str]) -> "InboxFilters":
        try:
            cursor = Cursor.decode(query["cursor"]) if query.get("cursor") else None
        except Rejection:
            cursor = None
        return cls(
            status=_choice(query.get("status"), STATUSES),
            severity=_choice(query.get("severity"), SEVERITIES),
            category=_text(query.get("category")),
            merchant=_text(query.get("merchant")),
            assignee=_text(query.get("assignee")),
            within=_choice(query.get("within"), WITHIN),
            cursor=cursor,
        )

    def params(self, now: datetime) -> dict[str, object]:
        """The SQL parameters of every filter but the cursor (NULL: not filtered)."""
        return {
            "status": self.status,
            "severity": self.severity,
            "category": self.category,
            "merchant": self.merchant,
            "assignee": self.assignee,
            "since": now - WITHIN[self.within] if self.within else None,
        }

    def query_string(self, **changes: object) -> str:
        """This filter as a query string, with `changes` applied (e.g. a cursor or a status)."""
        chosen = replace(self, **changes)  # type: ignore[arg-type]
        pairs = {
            name: getattr(chosen, name)
            for name in ("status", "severity", "category", "merchant", "assignee", "within")
        }
        if chosen.cursor is not None:
            pairs["cursor"] = chosen.cursor.encode()
        return urlencode({name: value for name, value in pairs.items() if value})
