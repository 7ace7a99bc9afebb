"""Batches decided while the previous one is written, acked only once durable, in order
(detector_worker/overlap.py)."""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import NoReturn

import pytest

from detector_worker.decision import BatchDecision
from detector_worker.overlap import OverlappedWriter
from detector_worker.records import RawRecord


class Failed(Exception):
    pass


class FakeProcessor:
    """Records the order of events; the write of a batch waits until the test releases it."""

    def __init__(self, failing: int | None = None) -> None:
        self.log: list[str] = []
        self.writing: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.release: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.failing = failing

    def decide(self, records: Sequence[RawRecord]) -> BatchDecision:
        self.log.append(f"decide {records[0].offset}")
        return BatchDecision((), (), ())

    async def make_durable(self, records: Sequence[RawRecord], decision: BatchDecision) -> None:
        number = records[0].offset
        self.log.append(f"write {number}")
        self.writing[number].set()
        await self.release[number].wait()
        if number == self.failing:
            raise RuntimeError("the database refused the batch")
        self.log.append(f"durable {number}")


async def _batches(count: int) -> AsyncIterator[list[int]]:
    for number in range(count):
        yield [number]


def _records(batch: list[int]) -> list[RawRecord]:
    return [RawRecord("t", 0, n, None, b"{}") for n in batch]


def _fail(records: Sequence[RawRecord], error: BaseException) -> NoReturn:
    raise Failed(records[0].offset) from error


async def _released_in_turn(processor: FakeProcessor, count: int) -> None:
    for number in range(count):
        await processor.writing[number].wait()
        await asyncio.sleep(0.01)  # time for the next batch to be decided meanwhile
        processor.release[number].set()


async def test_the_next_batch_is_decided_while_one_is_written_and_each_acked_once_durable() -> None:
    processor, acked = FakeProcessor(), []

    def ack(batch: list[int]) -> None:
        processor.log.append(f"ack {batch[0]}")
        acked.extend(batch)

    releaser = asyncio.create_task(_released_in_turn(processor, 3))
    await OverlappedWriter(processor, ack, _fail).run(_batches(3), _records)
    await releaser
    assert acked == [0, 1, 2]
    at = processor.log.index
    for number in range(3):
        assert at(f"write {number}") < at(f"durable {number}") < at(f"ack {number}")
    for number in range(2):
        # The next batch is decided while this one is written; written only after its ack.
        assert at(f"decide {number + 1}") < at(f"durable {number}")
        assert at(f"ack {number}") < at(f"write {number + 1}")


async def test_a_batch_that_fails_is_never_acked_nor_any_after_it() -> None:
    processor, acked = FakeProcessor(failing=1), list[int]()
    releaser = asyncio.create_task(_released_in_turn(processor, 2))
    with pytest.raises(Failed):
        await OverlappedWriter(processor, acked.extend, _fail).run(_batches(3), _records)
    await releaser
    assert acked == [0]
    assert "write 2" not in processor.log


async def test_the_batch_in_flight_is_cancelled_when_the_loop_is() -> None:
    processor = FakeProcessor()
    loop = asyncio.create_task(
        OverlappedWriter(processor, list[int]().extend, _fail).run(_batches(1), _records)
    )
    await processor.writing[0].wait()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    processor.release[0].set()
    await asyncio.sleep(0.01)
    assert "durable 0" not in processor.log  # the write was cancelled with the loop


async def test_idle_returns_once_the_batch_in_flight_is_durable() -> None:
    processor = FakeProcessor()
    writer = OverlappedWriter(processor, list[int]().extend, _fail)
    await writer.idle()  # nothing in flight
    loop = asyncio.create_task(writer.run(_batches(1), _records))
    await processor.writing[0].wait()
    idle = asyncio.create_task(writer.idle())
    await asyncio.sleep(0.01)
    assert not idle.done()
    processor.release[0].set()
    await idle
    await loop
