"""One bound for all of a request's reads (DATABASE_TIMEOUT_SECONDS)."""

import asyncio
import inspect
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

from ingest_gateway.context import READ_BUDGET, SETTINGS
from ingest_gateway.deadlines import Overdue, answer_within

T = TypeVar("T")


async def read_within_bound(request: web.Request, work: Awaitable[T]) -> T:
    """`work`'s result, or Overdue once the request's reads have waited
    DATABASE_TIMEOUT_SECONDS in all: a page behind a session cookie reads twice (the
    session, then the page), and the caller was promised one answer within the bound, not
    two. Only the reads' own time counts (not, say, a slow body read between them)."""
    left = request.get(READ_BUDGET, request.app[SETTINGS].database_timeout_seconds)
    if left <= 0:
        if inspect.iscoroutine(work):
            work.close()  # never started: nothing to cancel, nothing to warn of
        raise Overdue
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        return await answer_within(left, work)
    finally:
        request[READ_BUDGET] = left - (loop.time() - started)
