"""Reading alerts newest first, with an opaque keyset cursor.

The cursor is the (created_at, id) of the last alert returned: alerts inserted meanwhile
sort before it, so paging on is neither shifted nor duplicated by them.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from schemas import AlertOut

_PAGE_SQL = """
SELECT a.id, a.transaction_id, a.alert_message, a.severity, a.created_at, a.rule, a.z_score,
       t.amount::text AS amount, t.currency, t.category, t.merchant, t.transaction_date
FROM alerts a JOIN transactions t ON t.id = a.transaction_id
WHERE %(after_created)s::timestamptz IS NULL
   OR (a.created_at, a.id) < (%(after_created)s::timestamptz, %(after_id)s::uuid)
ORDER BY a.created_at DESC, a.id DESC
LIMIT %(limit)s
"""


class BadCursor(ValueError):
    pass


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
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body = json.loads(raw)
            return cls(datetime.fromisoformat(body["t"]), UUID(body["id"]))
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise BadCursor("cursor is not one this API issued") from exc


async def alerts_page(
    conn: AsyncConnection, limit: int, after: Cursor | None
) -> tuple[list[AlertOut], Cursor | None]:
    """One page, newest first, and the cursor of the next page (None on the last one)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _PAGE_SQL,
            {
                "after_created": after.created_at if after else None,
                "after_id": after.id if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    items = [AlertOut.model_validate(row) for row in rows[:limit]]
    more = len(rows) > limit
    return items, Cursor(items[-1].created_at, items[-1].id) if more and items else None
