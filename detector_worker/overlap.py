"""The agent's loop: each batch is decided while the one before it is being made durable.

Deciding a batch (decode, validate, score) is the detector's CPU; making it durable (the
write to PostgreSQL, then the broker's acknowledgement of its verdicts) is mostly waiting.
Done one after the other, the process sat idle through every write. Here batch N+1 is
decided while batch N is written (a full one: batching.take_quiet has a batch that is not
full wait for the write, gathering records meanwhile), and nothing else changes: one batch at
a time is made durable, in order, and a batch is acknowledged (its offsets committable) only
once it is durable. A batch that fails is never acknowledged, nor is any batch after it.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Generic, NoReturn, Protocol, TypeVar

from detector_worker.decision import BatchDecision
from detector_worker.records import RawRecord

M = TypeVar("M")


class BatchProcessor(Protocol):
    def decide(self, records: Sequence[RawRecord]) -> BatchDecision: ...

    async def make_durable(self, records: Sequence[RawRecord], decision: BatchDecision) -> None: ...


# Called with the batch and the error when a batch fails; it never returns (the process
# exits, and the batch is replayed from the last committed offset).
OnFailure = Callable[[Sequence[RawRecord], BaseException], NoReturn]


class OverlappedWriter(Generic[M]):
    """Makes one batch durable at a time in the background while the loop decides the next."""

    def __init__(
        self, processor: BatchProcessor, ack: Callable[[list[M]], None], on_failure: OnFailure
    ) -> None:
        self._processor = processor
        self._ack = ack
        self._on_failure = on_failure
        self._in_flight: asyncio.Task[None] | None = None

    async def idle(self) -> None:
        """Until no batch is being made durable (a failure is the loop's to handle)."""
        if self._in_flight is not None and not self._in_flight.done():
            await asyncio.wait([self._in_flight])

    async def run(
        self, batches: AsyncIterator[list[M]], to_records: Callable[[list[M]], list[RawRecord]]
    ) -> None:
        """Decide each batch, wait for the previous one to be durable, then make this one
        durable in the background and acknowledge it when it is."""
        try:
            async for batch in batches:
                records = to_records(batch)
                try:
                    decision = self._processor.decide(records)
                except Exception as exc:
                    self._on_failure(records, exc)
                if self._in_flight is not None:
                    await self._in_flight
                self._in_flight = asyncio.create_task(
                    _durable_then_ack(
                        self._processor, batch, records, decision, self._ack, self._on_failure
                    )
                )
            if self._in_flight is not None:
                await self._in_flight
        finally:
            if self._in_flight is not None and not self._in_flight.done():
                self._in_flight.cancel()


async def _durable_then_ack(
    processor: BatchProcessor,
    batch: list[M],
    records: Sequence[RawRecord],
    decision: BatchDecision,
    ack: Callable[[list[M]], None],
    on_failure: OnFailure,
) -> None:
    try:
        await processor.make_durable(records, decision)
    except Exception as exc:
        on_failure(records, exc)
    ack(batch)
