"""Batches of records with a window that adapts to the load.

A batch is yielded as soon as the records go quiet: when no fetch has joined the batch for
`quiet` seconds and none is waiting (or the batch is full, or `within` has passed since it
started lingering). Under load fetches keep arriving and batches grow towards `max_`; when
idle a record waits `quiet`, not the whole `within` window (which is what Faust's
`take_events` would make every batch wait).

The records come from an inbox (detector_worker/delivery.py) a fetch at a time. Nothing
here acknowledges them: the caller acks a batch once it is durable (detector_worker/app.py).
"""

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Protocol, TypeVar

T = TypeVar("T")


class Inbox(Protocol[T]):
    async def take(self) -> list[T]:
        """Wait for records, then take every one waiting."""
        ...

    def take_nowait(self) -> list[T]:
        """Every record waiting (none: an empty list)."""
        ...


async def take_quiet(
    inbox: Inbox[T],
    max_: int,
    within: float,
    quiet: float,
) -> AsyncGenerator[list[T], None]:
    """Batches of at most `max_` records: each is yielded once no record has joined it for
    `quiet` seconds and none is waiting, once it is full, or `within` seconds after it began
    to linger. Endless: Faust cancels the agent when it stops, after the records taken from
    the inbox are acked (its wait_empty), so records in hand are never left behind."""
    pending: list[T] = []
    while True:
        if not pending:
            pending = await inbox.take()
        await linger(inbox, pending, max_, within, quiet)
        batch, pending = pending[:max_], pending[max_:]
        if batch:
            yield batch


async def linger(inbox: Inbox[T], pending: list[T], max_: int, within: float, quiet: float) -> None:
    """Add to `pending` what is waiting and what arrives with gaps shorter than `quiet`, up to
    `max_` records or `within` seconds from now."""
    deadline = time.monotonic() + within
    while len(pending) < max_:
        if waiting := inbox.take_nowait():
            pending += waiting
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            async with asyncio.timeout(min(quiet, left)):
                pending += await inbox.take()
        except TimeoutError:
            return
