"""One timer for many blocks of code that are all bounded by the same number of seconds.

`asyncio.timeout` makes a timer per block: a TimerHandle pushed on the loop's heap, cancelled
when the block ends, and the cancelled handles then swept out of the heap. For a bound that
every request pays and almost never hits (the publish timeout), that was ~5 % of a
request's CPU. Blocks bounded by the same seconds come due in the order they start, so they
wait in a queue with one timer at its head; a block that ends is only marked, and leaves
the queue when it reaches the head. A block that runs out of time is cancelled and raises
TimeoutError, with asyncio.timeout's rules: a cancellation that did not come from the
deadline still propagates as CancelledError.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

from shared.tasks import hold_until_done

T = TypeVar("T")


class Bound:
    """One block's deadline: `async with deadlines.bound():` (see SharedDeadline)."""

    __slots__ = ("_owner", "cancelling", "deadline", "done", "expired", "task")
    deadline: float  # loop time
    task: "asyncio.Task[object] | None"
    cancelling: int  # the task's cancel requests on entry

    def __init__(self, owner: "SharedDeadline") -> None:
        self._owner = owner
        self.expired = False
        self.done = False

    async def __aenter__(self) -> "Bound":
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline bounds code running in a task")
        self.task = task
        self.cancelling = task.cancelling()
        self._owner.enter(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.done = True
        task, self.task = self.task, None  # an ended block waits in the queue: hold no task
        # As asyncio.timeout: the deadline's cancel request is withdrawn whatever the block
        # raised, and only a cancellation that came from the deadline alone becomes a timeout.
        if self.expired and task is not None:
            withdrawn = task.uncancel() <= self.cancelling
            if withdrawn and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc


class SharedDeadline:
    """Bounds blocks to `seconds` each, with one timer for all of them, on one event loop
    (the one its first block runs on, as the application's Publisher)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        # Every block not yet at the head, in the order they started (so of their deadlines).
        self._queue: deque[Bound] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def bound(self) -> Bound:
        return Bound(self)

    def enter(self, bound: Bound) -> None:
        queue = self._queue
        while queue and queue[0].done:  # blocks that ended: nearly every one, at once
            queue.popleft()
        loop = asyncio.get_running_loop()
        bound.deadline = loop.time() + self._seconds
        queue.append(bound)
        if self._timer is None:
            self._timer = loop.call_at(bound.deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        queue, now = self._queue, loop.time()
        while queue and (queue[0].done or queue[0].deadline <= now):
            bound = queue.popleft()
            if not bound.done and bound.task is not None:
                bound.expired = True
                bound.task.cancel()
        if queue:  # the next deadline (a block at the head may have ended by then)
            self._timer = loop.call_at(queue[0].deadline, self._expire, loop)


class Overdue(TimeoutError):
    """`answer_within`'s bound passed (a TimeoutError that `work` raised itself is not one)."""


async def answer_within(seconds: float, work: Awaitable[T]) -> T:
    """`work`'s result if it ends within `seconds`, else `Overdue` at the bound.

    Past the bound `work` is cancelled but not waited for: psycopg's cancellation of a query
    the server does not answer takes up to 10 s more (it asks the server to cancel, then
    closes the connection), and the caller was promised an answer at the bound."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.done():
        return task.result()
    task.cancel()
    hold_until_done(task)
    raise Overdue
