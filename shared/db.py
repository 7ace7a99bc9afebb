"""PostgreSQL plumbing: a connection pool bound to the configured schema, and query timing."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

from prometheus_client import Histogram
from psycopg import AsyncConnection
from psycopg.rows import dict_row
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
) -> AsyncConnectionPool:
    """Open a pool and wait until it holds a working connection (fails fast on bad credentials).

    `configure` runs once on every new connection (also after a reconnect)."""
    pool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs=connection_kwargs(schema),
        configure=configure,
        open=False,
        name=f"jalytics-{schema}",
    )
    await pool.open(wait=True, timeout=30)
    return pool


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
    async with (
        pool.connection() as conn,
        conn.cursor(row_factory=dict_row) as cur,
        timed(histogram, name),
    ):
        await cur.execute(query, params)
        return await cur.fetchall() if cur.description is not None else []


def columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    """Rows to one list per column: the shape `INSERT ... SELECT * FROM unnest(...)` takes,
    which writes a whole batch in one statement and one round trip."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
