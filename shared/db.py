"""PostgreSQL plumbing: a connection pool bound to the configured schema, and query timing."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, LiteralString

from prometheus_client import Histogram
from psycopg import AsyncConnection, DataError
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from psycopg.types.datetime import TimestamptzLoader
from psycopg_pool import AsyncConnectionPool


def connection_kwargs(schema: str) -> dict[str, object]:
    # Every connection resolves table names in the configured schema only.
    return {"options": f"-c search_path={schema}", "autocommit": False}


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
    up to `connection_timeout` for a connection (then PoolTimeout)."""
    pool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs=connection_kwargs(schema),
        configure=configure,
        open=False,
        timeout=connection_timeout,
        name=f"jalytics-{schema}",
    )
    await pool.open(wait=True, timeout=30)
    return pool


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
    """One statement in its own transaction, its rows as dicts, timed as `name`."""
    async with pool.connection() as conn:
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
