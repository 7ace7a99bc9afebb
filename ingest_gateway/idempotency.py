"""`Idempotency-Key` on POSTs: a successful answer is kept and replayed to retries.

The key is claimed (a row with no answer yet) before the work starts, so two concurrent
requests with one key cannot both do it; the other gets 409 while the first is in progress.
Only a success (2xx) is kept: any other answer (a 404 "not scored yet", a 503) is transient
and releases the claim, so a retry does the work again. A claim whose request died without
answering (its process or the database went away) is taken over by the same request after
`claim_timeout`; the work is idempotent (the same key and body give the same transaction id),
so doing it again records nothing twice.
"""

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import OperationalError
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from shared.db import bounded_connection

log = logging.getLogger(__name__)

# Headers of a kept answer that its replays repeat.
REPLAYED_HEADERS = ("Idempotency-Key", "X-Transaction-Id")

_CLAIM = """
INSERT INTO idempotency_keys (api_key, key, method_path, request_hash)
VALUES (%s, %s, %s, %s)
ON CONFLICT (api_key, key) DO NOTHING
RETURNING created_at
"""
_LOOKUP = """
SELECT method_path, request_hash, status, response, headers
FROM idempotency_keys WHERE api_key = %s AND key = %s
"""
_EXPIRE = "DELETE FROM idempotency_keys WHERE api_key = %s AND key = %s AND created_at < %s"
# A claim left without an answer for longer than the claim timeout: its request died.
_DROP_ABANDONED = """
DELETE FROM idempotency_keys
WHERE api_key = %s AND key = %s AND status IS NULL AND created_at < %s
  AND method_path = %s AND request_hash = %s
"""
# Both only on the claim they were given (its `created_at`): a request that ran past the
# claim timeout, whose key a retry has claimed since, must not answer for, or free, the
# retry's claim.
_STORE = """
UPDATE idempotency_keys SET status = %s, response = %s, headers = %s
WHERE api_key = %s AND key = %s AND created_at = %s
"""
_RELEASE = """
DELETE FROM idempotency_keys
WHERE api_key = %s AND key = %s AND status IS NULL AND created_at = %s
"""


def request_fingerprint(method_path: str, body: bytes) -> str:
    """The exact bytes of the body: a retry must repeat them, not just their meaning."""
    return hashlib.sha256(method_path.encode() + b"\0" + body).hexdigest()


def is_kept(status: int) -> bool:
    """Whether an answer with this status is final, so kept and replayed."""
    return 200 <= status < 300


@dataclass(frozen=True)
class Claimed:
    """The key is ours: do the work, then `store` (or `release` on failure). `since` (when
    it was claimed) names this claim among the key's: `store` and `release` touch only it."""

    since: datetime


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflict:
    reason: Literal["different_request", "in_progress"]


Outcome = Claimed | Replay | Conflict


class IdempotencyStore:
    def __init__(self, pool: AsyncConnectionPool, ttl: timedelta, claim_timeout: timedelta) -> None:
        self._pool = pool
        self._ttl = ttl
        self._claim_timeout = claim_timeout
        self._releasing: set[asyncio.Task[None]] = set()

    async def claim(
        self, api_key: str, key: str, method_path: str, fingerprint: str, now: datetime
    ) -> Outcome:
        async with bounded_connection(self._pool) as conn:
            await conn.execute(_EXPIRE, (api_key, key, now - self._ttl))
            await conn.execute(
                _DROP_ABANDONED,
                (api_key, key, now - self._claim_timeout, method_path, fingerprint),
            )
            claimed = await (
                await conn.execute(_CLAIM, (api_key, key, method_path, fingerprint))
            ).fetchone()
            if claimed is not None:
                return Claimed(claimed[0])
            row = await (await conn.execute(_LOOKUP, (api_key, key))).fetchone()
        if row is None:  # expired and deleted between the two statements: try once more
            return await self.claim(api_key, key, method_path, fingerprint, now)
        stored_path, stored_hash, status, response, headers = row
        if stored_path != method_path or stored_hash != fingerprint:
            return Conflict("different_request")
        if status is None:
            return Conflict("in_progress")
        return Replay(status, response, headers or {})

    async def store(
        self,
        api_key: str,
        key: str,
        claim: Claimed,
        status: int,
        body: Any,
        headers: dict[str, str],
    ) -> None:
        async with bounded_connection(self._pool) as conn:
            await conn.execute(
                _STORE, (status, Jsonb(body), Jsonb(headers), api_key, key, claim.since)
            )

    async def release(self, api_key: str, key: str, claim: Claimed) -> None:
        async with bounded_connection(self._pool) as conn:
            await conn.execute(_RELEASE, (api_key, key, claim.since))

    def release_soon(self, api_key: str, key: str, claim: Claimed) -> None:
        """Release in the background, for a request the database failed: its 503 goes out
        now instead of after a second bound spent on the same database, and the key is free
        again as soon as the database answers (or, without it, after the claim timeout)."""
        task = asyncio.create_task(self._release_quietly(api_key, key, claim))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def drain(self, seconds: float) -> None:
        """Wait (at most `seconds`) for the releases still in the background, before the
        pool closes under them: a key left claimed waits out the claim timeout."""
        if self._releasing:
            await asyncio.wait(self._releasing, timeout=seconds)

    async def _release_quietly(self, api_key: str, key: str, claim: Claimed) -> None:
        try:
            await self.release(api_key, key, claim)
        except (OperationalError, PoolTimeout) as exc:
            log.warning("idempotency claim not released", extra={"error": repr(exc)})
