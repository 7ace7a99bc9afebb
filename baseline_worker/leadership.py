"""Exactly one active baseline worker: a PostgreSQL session advisory lock.

The lock lives as long as the session that took it, so a leader that dies (or loses its
connection) releases it and a standby takes over on its next poll.
"""

import asyncio
import logging
import zlib
from typing import Self

from psycopg import AsyncConnection, OperationalError

log = logging.getLogger(__name__)


def leader_lock_key(schema: str) -> int:
    """One lock per schema: deployments (or test runs) sharing a database do not contend."""
    return zlib.crc32(f"jalytics-baseline-leader:{schema}".encode())


class LeadershipLost(Exception):
    """The session holding the lock is gone: stop working as leader."""


class LeaderLock:
    def __init__(self, database_url: str, key: int) -> None:
        self._database_url = database_url
        self._key = key
        self._conn: AsyncConnection | None = None

    async def acquire(self, poll_seconds: float) -> None:
        """Wait (as a standby) until this instance holds the lock."""
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await AsyncConnection.connect(self._database_url, autocommit=True)
                row = await (
                    await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
                ).fetchone()
                if row is not None and row[0]:
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
            await self._conn.execute("SELECT 1")
        except OperationalError as exc:
            await self._close()
            raise LeadershipLost(repr(exc)) from exc

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
