"""Batches of a Faust stream's events with a window that adapts to the load.

Faust's `take_events(max_, within)` waits the whole `within` window before every batch, even
when a single record is waiting and nothing else is coming: at low rates each record pays the
full window. Here a batch is yielded as soon as the stream goes quiet: when no record has
joined the batch for `quiet` seconds and none is waiting in the stream's buffer (or it is
full, or `within` has passed since it started lingering). Under load records keep arriving
and batches grow towards `max_`; when idle a record waits `quiet`, not `within`.

The mechanics are those of Faust's `take_events` (faust-streaming 0.15): a processor fills
the buffer while the stream is consumed passively, acks are disabled while a batch is in the
caller's hands, and the batch's events are acknowledged only when the caller asks for the
next batch, i.e. after its body has made the batch durable. Unlike take_events, a body that
raises leaves its events unacknowledged too, so their offsets are never committed.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sized
from typing import Any

from faust.types import EventT


async def take_quiet(
    stream: Any, max_: int, within: float, quiet: float
) -> AsyncIterator[list[EventT[Any]]]:
    """Batches of at most `max_` events: each is yielded once no event has joined it for
    `quiet` seconds and none waits in the stream's buffer, once it is full, or `within`
    seconds after it began to linger."""
    events: list[EventT[Any]] = []
    arrived = asyncio.Event()  # set when an event joins an empty batch
    consumed = asyncio.Event()  # set when the caller has taken a full batch
    in_hand: asyncio.Future[None] | None = None  # the batch the caller holds

    async def add_to_batch(value: Any) -> Any:
        nonlocal in_hand
        if in_hand is not None:  # never add to a batch the caller holds
            await in_hand
        event = stream.current_event
        if event is None:
            raise RuntimeError("batch found current_event is None")
        events.append(event)
        arrived.set()
        if len(events) >= max_:
            consumed.clear()
            await stream.wait(consumed)  # not one event more than max_ in a batch
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False  # acknowledged here, after the caller's body
    stream.add_processor(add_to_batch)
    channel = aiter(stream.channel)
    stream._enable_passive(channel)  # as take_events does (no public API)

    def backlog() -> bool:
        # Records already delivered to the stream but not yet through its processors: a
        # process short of CPU drains slowly, which is not a quiet stream.
        return not channel.queue.empty()

    try:
        while not stream.should_stop:
            if not events:
                await stream.wait_for_stopped(arrived, timeout=within)
                arrived.clear()
                continue
            await linger(events, max_, within, quiet, backlog)
            batch = list(events)
            in_hand = asyncio.get_running_loop().create_future()
            try:
                yield batch
                # Reached only when the caller asks for the next batch: its body is done.
                for event in batch:
                    await stream.ack(event)
            finally:
                events.clear()
                in_hand.set_result(None)
                in_hand = None
                arrived.clear()
                consumed.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_batch)


async def linger(
    events: Sized,
    max_: int,
    within: float,
    quiet: float,
    backlog: Callable[[], bool] = lambda: False,
) -> None:
    """Wait while events keep joining the batch or more are waiting (`backlog`), up to
    `within` from now."""
    deadline = time.monotonic() + within
    while len(events) < max_:
        size = len(events)
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(quiet, left))
        if len(events) == size and not backlog():
            return
