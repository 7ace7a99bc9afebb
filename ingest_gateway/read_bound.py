"""One bound for all of a request's reads (DATABASE_TIMEOUT_SECONDS)."""

import asyncio
import inspect
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

from ingest_gateway.context import READ_DEADLINE, SETTINGS
from ingest_gateway.deadlines import Overdue, answer_within

T = TypeVar("T")


async def read_within_bound(request: web.Request, work: Awaitable[T]) -> T:
    """`work`'s result, or Overdue once the request's reads have had DATABASE_TIMEOUT_SECONDS
    from the first of them: a page behind a session cookie reads twice (the session, then
    the page), and the caller was promised one answer within the bound, not two."""
    loop = asyncio.get_running_loop()
    deadline = request.get(READ_DEADLINE)
    if deadline is None:
        deadline = loop.time() + request.app[SETTINGS].database_timeout_seconds
        request[READ_DEADLINE] = deadline
    left = deadline - loop.time()
    if left <= 0:
        if inspect.iscoroutine(work):
            work.close()  # never started: nothing to cancel, nothing to warn of
        raise Overdue
    return await answer_within(left, work)
