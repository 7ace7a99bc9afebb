"""Tasks given up on: cancelled by their caller, not waited for, held until they end."""

import asyncio
from typing import Any

# Held so that a task still ending its cancellation is not garbage-collected half-way.
_ABANDONED: set["asyncio.Future[Any]"] = set()


def hold_until_done(task: "asyncio.Future[Any]") -> None:
    """Keep a cancelled `task` alive until it ends, its outcome retrieved (it was given up
    on: nothing waits for what it says). For work whose cancellation may itself wait: psycopg
    asks a database gone silent to cancel the statement in flight, up to 10 s."""
    if task.done():
        return
    _ABANDONED.add(task)
    task.add_done_callback(_forget)


def _forget(task: "asyncio.Future[Any]") -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()
