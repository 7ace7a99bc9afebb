"""`Idempotency-Key` on POSTs: the first answer is stored and replayed to retries.

The key is claimed (a row with no answer yet) before the work starts, so two concurrent
requests with one key cannot both publish; the loser gets 409 until the first has answered.
A request that failed on a dependency (5xx) releases its claim: a retry may do the work.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

_CLAIM = """
INSERT INTO idempotency_keys (api_key, key, method_path, request_hash)
VALUES (%s, %s, %s, %s)
ON CONFLICT (api_key, key) DO NOTHING
RETURNING 1
"""
_LOOKUP = """
SELECT method_path, request_hash, status, response, created_at
FROM idempotency_keys WHERE api_key = %s AND key = %s
"""
_EXPIRE = "DELETE FROM idempotency_keys WHERE api_key = %s AND key = %s AND created_at < %s"
_STORE = "UPDATE idempotency_keys SET status = %s, response = %s WHERE api_key = %s AND key = %s"
_RELEASE = "DELETE FROM idempotency_keys WHERE api_key = %s AND key = %s AND status IS NULL"


def request_fingerprint(method_path: str, body: bytes) -> str:
    return hashlib.sha256(method_path.encode() + b"\0" + body).hexdigest()


@dataclass(frozen=True)
class Claimed:
    """The key is ours: do the work, then `store` (or `release` on failure)."""


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


@dataclass(frozen=True)
class Conflict:
    reason: Literal["different_request", "in_progress"]


Outcome = Claimed | Replay | Conflict


class IdempotencyStore:
    def __init__(self, pool: AsyncConnectionPool, ttl: timedelta) -> None:
        self._pool = pool
        self._ttl = ttl

    async def claim(
        self, api_key: str, key: str, method_path: str, fingerprint: str, now: datetime
    ) -> Outcome:
        async with self._pool.connection() as conn:
            await conn.execute(_EXPIRE, (api_key, key, now - self._ttl))
            claimed = await (
                await conn.execute(_CLAIM, (api_key, key, method_path, fingerprint))
            ).fetchone()
            if claimed is not None:
                return Claimed()
            row = await (await conn.execute(_LOOKUP, (api_key, key))).fetchone()
        if row is None:  # expired and deleted between the two statements: try once more
            return await self.claim(api_key, key, method_path, fingerprint, now)
        stored_path, stored_hash, status, response, _ = row
        if stored_path != method_path or stored_hash != fingerprint:
            return Conflict("different_request")
        if status is None:
            return Conflict("in_progress")
        return Replay(status, response)

    async def store(self, api_key: str, key: str, status: int, body: Any) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_STORE, (status, Jsonb(body), api_key, key))

    async def release(self, api_key: str, key: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_RELEASE, (api_key, key))
