"""Blocks bounded by one shared timer time out as asyncio.timeout's would."""

import asyncio
import time

import pytest

from ingest_gateway.deadlines import SharedDeadline

SECONDS = 0.05


async def hang_within(deadline: SharedDeadline) -> float:
    """Seconds until the bound stops a block that never ends."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with deadline.bound():
            await asyncio.sleep(10)
    return time.monotonic() - started


async def test_a_block_past_its_deadline_raises_timeout_at_the_deadline() -> None:
    assert SECONDS <= await hang_within(SharedDeadline(SECONDS)) < SECONDS + 0.5


async def test_blocks_that_end_in_time_are_left_alone_and_later_ones_keep_their_own_deadline() -> (
    None
):
    deadline = SharedDeadline(SECONDS)
    for _ in range(3):
        async with deadline.bound():
            await asyncio.sleep(0)
    await asyncio.sleep(SECONDS / 2)
    # Started after the others ended: timed from its own start, not from the first block's.
    assert SECONDS <= await hang_within(deadline) < SECONDS + 0.5
    async with deadline.bound():  # and the bound still serves blocks after a timeout
        await asyncio.sleep(0)


async def test_concurrent_blocks_each_time_out_and_the_quick_ones_finish() -> None:
    deadline = SharedDeadline(SECONDS)

    async def quick() -> str:
        async with deadline.bound():
            await asyncio.sleep(SECONDS / 5)
        return "done"

    results = await asyncio.gather(
        hang_within(deadline), quick(), hang_within(deadline), quick(), return_exceptions=True
    )
    assert results[1] == results[3] == "done"
    assert all(SECONDS <= float(seconds) < SECONDS + 0.5 for seconds in results[::2])  # type: ignore[arg-type]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    deadline = SharedDeadline(SECONDS)

    async def waits() -> None:
        async with deadline.bound():
            await asyncio.sleep(10)

    task = asyncio.create_task(waits())
    await asyncio.sleep(SECONDS / 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The timer that was set for it finds nothing left to cancel.
    await asyncio.sleep(SECONDS * 2)


async def test_a_block_inside_a_task_cancelled_at_its_deadline_too_is_cancelled() -> None:
    """As asyncio.timeout: a cancel request besides the deadline's wins over TimeoutError."""
    deadline = SharedDeadline(SECONDS)

    async def waits() -> None:
        async with deadline.bound():
            try:
                await asyncio.sleep(10)
            finally:
                asyncio.current_task().cancel()  # type: ignore[union-attr]

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(waits())


async def test_a_block_that_turns_the_deadline_into_another_error_leaves_no_cancel_request() -> (
    None
):
    """As asyncio.timeout: the deadline's cancel request is withdrawn whatever the block
    raised, so the task's later timeouts and task groups see no stray cancellation."""
    deadline = SharedDeadline(SECONDS)

    async def bounded() -> None:
        async with deadline.bound():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                raise LookupError("the client's own error") from None

    async def converts() -> int:
        with pytest.raises(LookupError):
            await bounded()
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert await asyncio.create_task(converts()) == 0


async def test_an_ended_block_holds_no_reference_to_its_task() -> None:
    """Ended blocks wait in the queue until they reach its head (up to the bound's seconds
    behind a stalled one): they must not keep the request's task and its response alive."""
    deadline = SharedDeadline(10.0)
    bound = deadline.bound()
    async with bound:
        assert bound.task is asyncio.current_task()
    assert bound.task is None
