"""How batches are taken from the inbox and acknowledged (detector_worker/batching.py)."""

import asyncio
import time
from collections.abc import Sequence

from detector_worker.batching import linger, take_quiet


class FakeInbox:
    """Fetches (lists) in a queue, as detector_worker.delivery.RecordInbox holds them."""

    def __init__(self) -> None:
        self.fetches: asyncio.Queue[list[int]] = asyncio.Queue()
        self.acked: list[int] = []

    async def take(self) -> list[int]:
        return await self.fetches.get() + self.take_nowait()

    def take_nowait(self) -> list[int]:
        records: list[int] = []
        while not self.fetches.empty():
            records += self.fetches.get_nowait()
        return records

    def ack(self, records: Sequence[int]) -> None:
        self.acked += records


async def _arrivals(inbox: FakeInbox, every: float, count: int) -> None:
    for number in range(count):
        await asyncio.sleep(every)
        inbox.fetches.put_nowait([number])


async def test_a_quiet_stream_is_taken_after_the_quiet_gap_not_the_window() -> None:
    started = time.monotonic()
    await linger(FakeInbox(), [0], max_=100, within=1.0, quiet=0.01)
    assert time.monotonic() - started < 0.5


async def test_a_busy_stream_fills_the_batch_until_the_window() -> None:
    inbox, pending = FakeInbox(), [0]
    feeder = asyncio.create_task(_arrivals(inbox, every=0.002, count=1000))
    started = time.monotonic()
    await linger(inbox, pending, max_=10_000, within=0.2, quiet=0.05)
    feeder.cancel()
    assert 0.19 <= time.monotonic() - started < 0.5
    assert len(pending) > 10


async def test_a_full_batch_is_taken_at_once() -> None:
    started = time.monotonic()
    await linger(FakeInbox(), [0] * 5, max_=5, within=1.0, quiet=0.5)
    assert time.monotonic() - started < 0.1


async def test_fetches_already_waiting_join_the_batch_without_a_wait() -> None:
    # A process short of CPU finds several fetches waiting: none of them is a quiet gap.
    inbox, pending = FakeInbox(), [0]
    for fetch in ([1, 2], [3], [4, 5]):
        inbox.fetches.put_nowait(fetch)
    started = time.monotonic()
    await linger(inbox, pending, max_=100, within=1.0, quiet=0.5)
    assert pending == [0, 1, 2, 3, 4, 5]
    assert time.monotonic() - started < 0.6


async def test_a_fetch_larger_than_a_batch_is_split_and_nothing_is_acked_here() -> None:
    inbox = FakeInbox()
    inbox.fetches.put_nowait([1, 2, 3])
    batches = take_quiet(inbox, max_=2, within=0.05, quiet=0.01)
    assert await anext(batches) == [1, 2]
    assert await anext(batches) == [3]
    await batches.aclose()
    assert inbox.acked == []  # the caller acks, once a batch is durable (app.py)
