"""Keyset paging shared by the listings (`GET /alerts`, `GET /suppressions`, the inbox).

The cursor is the (created_at, id) of the last row returned, newest first: rows inserted
meanwhile sort before it, so paging on is neither shifted nor duplicated by them.
"""

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from aiohttp import web
from multidict import MultiMapping

from ingest_gateway.errors import query_rejection
from ingest_gateway.settings import GatewaySettings
from schemas import decode_json

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
            if not isinstance(body["t"], str) or not isinstance(body["id"], str):
                # UUID(1) is an AttributeError, not a ValueError: it answered 500.
                raise TypeError("cursor fields are strings")
            created_at = datetime.fromisoformat(body["t"])
            if created_at.tzinfo is None:
                raise ValueError("naive time")
            return cls(created_at, UUID(body["id"]))
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise query_rejection("cursor", "not a cursor this API issued", "bad_cursor") from exc


def given_once(query: MultiMapping[str], names: Iterable[str]) -> None:
    """A parameter that takes one value, given twice (merchant=A&merchant=B), is a 400 naming
    it: one of the two was silently dropped, so the answer was not what was asked for."""
    for name in names:
        if len(query.getall(name, ())) > 1:
            message = "give it once (only severity and status take several values)"
            raise query_rejection(name, message, "repeated_parameter")


def page_limit(raw: str | None, settings: GatewaySettings, default: int | None = None) -> int:
    """The `limit` query parameter: 1 to ALERTS_MAX_LIMIT (absent: `default`, else
    ALERTS_DEFAULT_LIMIT); anything else is a 400 naming it."""
    if raw is None:
        return settings.alerts_default_limit if default is None else default
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= settings.alerts_max_limit:
        message = f"must be an integer from 1 to {settings.alerts_max_limit}"
        raise query_rejection("limit", message, "bad_limit")
    return int(raw)


class Keyed(Protocol):
    """A listed row the keyset cursor can follow: newest first by (created_at, id)."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> UUID: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


def page_response(request: web.Request, rows: Sequence[Keyed], limit: int) -> web.Response:
    """A page of `limit` rows out of `rows` (fetched with one row more than the page, which
    tells whether there is a next page), with the next page's cursor in `X-Next-Cursor`
    and its address in `Link: <...>; rel="next"`."""
    items = rows[:limit]
    headers = {}
    if len(rows) > limit and items:
        token = Cursor(items[-1].created_at, items[-1].id).encode()
        headers["X-Next-Cursor"] = token
        # Pairs, not a dict: a repeated filter (severity=high&severity=critical) stays whole.
        next_query = [(k, v) for k, v in request.query.items() if k != "cursor"]
        next_query.append(("cursor", token))
        headers["Link"] = f'<{request.url.with_query(next_query).path_qs}>; rel="next"'
    return web.json_response([item.model_dump(mode="json") for item in items], headers=headers)
