"""Exactly one active baseline worker: a PostgreSQL session advisory lock.

The lock lives as long as the session that took it, so a leader that dies (or loses its
connection) releases it and a standby takes over on its next poll. Every statement on the
lock's session is bounded like any other unit of work (`shared.db.cut_at`): a session gone
silent (a dead host behind a middlebox that keeps acknowledging) is cut at the bound, so a
leader stands by and a standby reconnects instead of waiting on it for good.
"""

import asyncio
import logging
import zlib
from typing import LiteralString, Self

from psycopg import AsyncConnection, OperationalError

from shared.db import connect_bound, cut_at

log = logging.getLogger(__name__)


def leader_lock_key(schema: str) -> int:
    """One lock per schema: deployments (or test runs) sharing a database do not contend."""
    return zlib.crc32(f"jalytics-baseline-leader:{schema}".encode())


class LeadershipLost(Exception):
    """The session holding the lock is gone: stop working as leader."""


class LeaderLock:
    def __init__(self, database_url: str, key: int, timeout_seconds: float = 120) -> None:
        self._database_url = database_url
        self._key = key
        self._timeout_seconds = timeout_seconds
        self._conn: AsyncConnection | None = None

    async def acquire(self, poll_seconds: float) -> None:
        """Wait (as a standby) until this instance holds the lock."""
        while True:
            try:
                if await self._ask("SELECT pg_try_advisory_lock(%s)", (self._key,)):
                    log.info("acquired baseline leadership")
                    return
            except OperationalError as exc:
                log.warning("leader lock unavailable", extra={"error": repr(exc)})
                await self._close()
            await asyncio.sleep(poll_seconds)

    async def confirm(self) -> None:
        """Raise LeadershipLost unless the lock's session is still alive."""
        if self._conn is None or self._conn.closed:
            raise LeadershipLost("no lock session")
        try:
            await self._ask("SELECT true")
        except OperationalError as exc:
            await self._close()
            raise LeadershipLost(repr(exc)) from exc

    async def _ask(self, query: LiteralString, params: tuple[object, ...] = ()) -> bool:
        """One statement on the lock's session (connecting it first if it is gone), within
        the bound; a cut session raises DatabaseSilent (an OperationalError)."""
        deadline = asyncio.get_running_loop().time() + self._timeout_seconds
        if self._conn is None or self._conn.closed:
            self._conn = await AsyncConnection.connect(
                self._database_url,
                autocommit=True,
                **connect_bound(self._database_url, self._timeout_seconds),
            )
        with cut_at(self._conn, deadline, self._timeout_seconds):
            row = await (await self._conn.execute(query, params)).fetchone()
        return row is not None and bool(row[0])

    async def release(self) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.release()
