"""Batches acked in order, each once published, while the next is already begun."""

import asyncio
from typing import NoReturn

import pytest

from detector_worker.acks import AcksInOrder


class Failed(Exception):
    pass


def acks_into(acked: list[list[int]]) -> AcksInOrder[int]:
    def fail(messages: list[int], exc: BaseException) -> NoReturn:
        raise Failed(messages) from exc

    return AcksInOrder(acked.append, fail)


async def test_a_batch_published_first_is_still_acked_after_the_one_before_it() -> None:
    acked: list[list[int]] = []
    acks = acks_into(acked)
    first, second = asyncio.Future[None](), asyncio.Future[None]()
    await acks.add(first, [1])
    adding = asyncio.create_task(acks.add(second, [2]))
    second.set_result(None)
    await asyncio.sleep(0.01)
    assert acked == [] and not adding.done()  # waits for the batch before it
    first.set_result(None)
    await adding
    await asyncio.sleep(0.01)
    assert acked == [[1], [2]]


async def test_a_batch_is_acked_once_published_without_waiting_for_the_next() -> None:
    acked: list[list[int]] = []
    acks = acks_into(acked)
    published = asyncio.Future[None]()
    await acks.add(published, [1])
    assert acked == []
    published.set_result(None)
    await asyncio.sleep(0.01)
    assert acked == [[1]]  # an idle stream leaves nothing unacked


async def test_a_batch_whose_publishing_failed_is_never_acked() -> None:
    acked: list[list[int]] = []
    acks = acks_into(acked)
    published = asyncio.Future[None]()
    published.set_exception(RuntimeError("broker gone"))
    await acks.add(published, [1])
    with pytest.raises(Failed):
        await acks.add(asyncio.Future[None](), [2])
    assert acked == []
