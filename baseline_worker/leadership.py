"""Exactly one active baseline worker: a PostgreSQL session advisory lock.

The lock lives as long as the session that took it, so a leader that dies (or loses its
connection) releases it and a standby takes over on its next poll. Every statement on the
lock's session is bounded like any other unit of work (`shared.db.cut_at`): a session gone
silent (a dead host behind a middlebox that keeps acknowledging) is cut at the bound, so a
leader stands by and a standby reconnects instead of waiting on it for good.
"""

import asyncio
import logging
import math
import zlib
from typing import LiteralString, Self

from psycopg import AsyncConnection, OperationalError

from shared.db import DatabaseSilent, abandoned_session_options, connect_bound, cut_at

log = logging.getLogger(__name__)


def leader_lock_key(schema: str) -> int:
    """One lock per schema: deployments (or test runs) sharing a database do not contend."""
    return zlib.crc32(f"jalytics-baseline-leader:{schema}".encode())


class LeadershipLost(Exception):
    """The session holding the lock is gone: stop working as leader."""


class LeaderLock:
    def __init__(
        self,
        database_url: str,
        key: int,
        timeout_seconds: float = 120,
        idle_seconds: float | None = None,
    ) -> None:
        """`timeout_seconds` bounds each statement; `idle_seconds`, when given, is how long
        the server keeps the lock's session while it says nothing (longer than the leader
        ever waits between two `confirm`s): a session its instance lost for good (a flow a
        middlebox dropped while it acknowledges the server's keepalives) would otherwise
        keep the lock, and nobody would lead."""
        self._database_url = database_url
        self._key = key
        self._timeout_seconds = timeout_seconds
        self._options = abandoned_session_options(timeout_seconds)
        if idle_seconds is not None:
            self._options += f" -c idle_session_timeout={math.ceil(idle_seconds * 1_000)}"
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
                options=self._options,
                **connect_bound(self._database_url, self._timeout_seconds),
            )
        with cut_at(self._conn, deadline, self._timeout_seconds) as cut:
            row = await (await self._conn.execute(query, params)).fetchone()
        if cut.done:  # cut as the answer came: the session, and any lock of it, is gone
            raise DatabaseSilent(f"database did not answer within {self._timeout_seconds:g} s")
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
