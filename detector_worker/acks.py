"""Acknowledging batches in order while the next one is already being written.

A batch's records may be acked (their offsets committed by Faust) only once its rows are
committed and the broker has its verdicts and alerts. Waiting for the broker need not hold
the next batch back, so the agent begins the next batch while the last one is published;
the acks must still go in order: Faust commits the first run of acked offsets of a
partition, so a later batch acked first would commit past an earlier one still in flight
(the reason the agent runs with concurrency=1, faust-streaming #606).
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, NoReturn, TypeVar

M = TypeVar("M")


class AcksInOrder(Generic[M]):
    def __init__(
        self,
        ack: Callable[[list[M]], None],
        fail: Callable[[list[M], BaseException], NoReturn],
    ) -> None:
        self._ack = ack
        self._fail = fail
        self._last: asyncio.Task[None] | None = None

    async def add(self, published: Awaitable[None], messages: list[M]) -> None:
        """Ack `messages` once `published` is done, after every batch added before. Returns
        once the batch before this one is acked: one batch waits for the broker at a time."""
        if self._last is not None:
            await self._last
        self._last = asyncio.create_task(self._ack_when_done(published, messages))

    async def _ack_when_done(self, published: Awaitable[None], messages: list[M]) -> None:
        try:
            await published
        except Exception as exc:
            self._fail(messages, exc)
        self._ack(messages)
