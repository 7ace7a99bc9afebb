"""PostgreSQL plumbing: a connection pool bound to the configured schema, units of work
bounded in time, and query timing."""

import asyncio
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import datetime
from typing import Any, LiteralString

from prometheus_client import Histogram
from psycopg import AsyncConnection, DataError, Error, OperationalError
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.datetime import TimestamptzLoader
from psycopg_pool import AsyncConnectionPool


def connection_kwargs(schema: str, bound: float) -> dict[str, object]:
    # Every connection resolves table names in the configured schema only.
    options = f"-c search_path={schema} {abandoned_session_options(bound)}"
    return {"options": options, "autocommit": False}


def abandoned_session_options(bound: float) -> str:
    """Server settings that end a session its client has abandoned, for a client whose units
    of work last at most `bound` seconds. A client cut off (`bounded_connection`) leaves its
    session behind, and the server otherwise holds it, with its locks, until its own TCP
    keepalives notice, ~2 h by default (blocking the retry of the very write that was cut):
    - a session idle in its transaction for twice the bound is ended;
    - the server probes an idle connection after a quarter of the bound and drops a peer
      that answers 3 probes no more (a dead host, a dropped flow), and drops one that leaves
      its data unacknowledged for the bound;
    - a running statement checks its client every half bound, and ends if it is gone."""
    abandoned_ms = max(1_000, math.ceil(2_000 * bound))
    check_ms = max(1_000, math.ceil(500 * bound))
    idle_s, interval_s = max(1, math.ceil(bound / 4)), max(1, math.ceil(bound / 8))
    return (
        f"-c idle_in_transaction_session_timeout={abandoned_ms}"
        f" -c tcp_keepalives_idle={idle_s} -c tcp_keepalives_interval={interval_s}"
        f" -c tcp_keepalives_count=3 -c tcp_user_timeout={max(1_000, math.ceil(1_000 * bound))}"
        f" -c client_connection_check_interval={check_ms}"
    )


def connect_bound(database_url: str, seconds: float) -> dict[str, Any]:
    """libpq's connect_timeout (whole seconds, 2 at least) unless the URL sets its own: a
    connection attempt to a silent server otherwise waits psycopg's default 130 s."""
    if "connect_timeout" in conninfo_to_dict(database_url):
        return {}
    return {"connect_timeout": max(2, math.ceil(seconds))}


async def open_pool(
    database_url: str,
    schema: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    configure: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
    connection_timeout: float = 30.0,
) -> AsyncConnectionPool:
    """Open a pool and wait until it holds a working connection (fails fast on bad credentials).

    `configure` runs once on every new connection (also after a reconnect); a caller waits
    up to `connection_timeout` for a connection (then PoolTimeout), and a unit of work in
    `bounded_connection` is given as long, waiting included."""
    pool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs=connection_kwargs(schema, connection_timeout)
        | connect_bound(database_url, connection_timeout),
        configure=configure,
        open=False,
        timeout=connection_timeout,
        name=f"jalytics-{schema}",
    )
    await pool.open(wait=True, timeout=30)
    return pool


class DatabaseSilent(OperationalError):
    """A unit of work in `bounded_connection` outlived its bound: its connection was cut."""


@asynccontextmanager
async def bounded_connection(
    pool: AsyncConnectionPool, seconds: float | None = None
) -> AsyncIterator[AsyncConnection[Any]]:
    """A pool connection for a unit of work that ends within `seconds` (the pool's timeout
    by default), the wait for the connection included.

    A database gone silent (a dead host, a partition, a proxy that keeps the socket open)
    answers nothing, and no server-side statement_timeout reaches the client; keepalives and
    tcp_user_timeout see nothing wrong while a middlebox acknowledges. Cancelling the task
    makes psycopg ask the server to cancel, 10 s more (psycopg issue 1371). So at the bound
    the connection's socket is shut down: the statement in flight fails at once with an
    OperationalError, raised as DatabaseSilent, and the pool discards the connection. The
    unit's transaction ends (COMMIT, or ROLLBACK on an error) inside the bound."""
    bound = pool.timeout if seconds is None else seconds
    deadline = asyncio.get_running_loop().time() + bound
    async with pool.connection(timeout=bound) as conn:
        with cut_at(conn, deadline, bound) as cut:
            try:
                yield conn
                # Ended here, inside the bound: the pool's own COMMIT (or ROLLBACK) on the
                # way out is past the cut and would wait on a silent server for good. On a
                # connection left idle (a `transaction()` block, autocommit) it is a no-op.
                await conn.commit()
            except BaseException:
                if not conn.closed:
                    with suppress(Error):
                        await conn.rollback()
                raise
            finally:
                if cut.done and not conn.closed:
                    # Cut as its last answer arrived: the unit succeeded, its socket did not.
                    await conn.close()


@contextmanager
def cut_at(conn: AsyncConnection[Any], deadline: float, bound: float) -> Iterator["_Cut"]:
    """Shut `conn`'s socket down at `deadline` (loop time) unless the block has ended; an
    OperationalError after the cut is raised as DatabaseSilent, naming `bound`."""
    cut = _Cut(conn)
    timer = asyncio.get_running_loop().call_at(deadline, cut)
    try:
        yield cut
    except OperationalError as exc:
        if cut.done:
            raise DatabaseSilent(f"database did not answer within {bound:g} s") from exc
        raise
    finally:
        timer.cancel()


class _Cut:
    """Shuts a connection's socket down (both ways) when called: what waits on it wakes up
    to a closed connection, which libpq reports as an error."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn
        self.done = False

    def __call__(self) -> None:
        self.done = True
        # A duplicate of libpq's descriptor, closed here; the shutdown is the socket's. A
        # connection closed already has nothing left to cut.
        with (
            suppress(OSError, Error),
            socket.socket(fileno=os.dup(self._conn.pgconn.socket)) as sock,
        ):
            sock.shutdown(socket.SHUT_RDWR)


class OutOfRangeAsTextLoader(Loader):
    """A timestamptz Python cannot hold (outside the years 1-9999 in UTC) reads as
    PostgreSQL's own text instead of failing the whole read (schemas.types.StoredTimestamp)."""

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        self._loader = TimestamptzLoader(oid, context)

    def load(self, data: Buffer) -> datetime | str:
        try:
            return self._loader.load(data)
        except DataError:
            return bytes(data).decode("utf-8")


async def read_any_stored_timestamp(conn: AsyncConnection[Any]) -> None:
    """A pool `configure` hook: one out-of-range row must never fail a read."""
    conn.adapters.register_loader("timestamptz", OutOfRangeAsTextLoader)


@asynccontextmanager
async def timed(histogram: Histogram, query: str) -> AsyncIterator[None]:
    """Observe `db_query_duration_seconds{query=...}` around one database round trip."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(query=query).observe(time.perf_counter() - started)


async def fetch_dicts(
    pool: AsyncConnectionPool,
    histogram: Histogram,
    name: str,
    query: LiteralString,
    params: Sequence[object] | Mapping[str, object],
) -> list[dict[str, Any]]:
    """One statement in its own transaction, its rows as dicts, timed as `name`; within the
    pool's timeout, the wait for a connection included (`bounded_connection`)."""
    async with bounded_connection(pool) as conn:
        return await query_dicts(conn, histogram, name, query, params)


async def query_dicts(
    conn: AsyncConnection[Any],
    histogram: Histogram,
    name: str,
    query: LiteralString,
    params: Sequence[object] | Mapping[str, object],
) -> list[dict[str, Any]]:
    """One statement on `conn` (within its transaction), its rows as dicts, timed as `name`."""
    async with conn.cursor(row_factory=dict_row) as cur, timed(histogram, name):
        await cur.execute(query, params)
        return await cur.fetchall() if cur.description is not None else []


def columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    """Rows to one list per column: the shape `INSERT ... SELECT * FROM unnest(...)` takes,
    which writes a whole batch in one statement and one round trip."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
