"""The agent's loop: each batch is decided while the one before it is being made durable.

Deciding a batch (decode, validate, score) is the detector's CPU; making it durable (the
write to PostgreSQL, then the broker's acknowledgement of its verdicts) is mostly waiting.
Done one after the other, the process sat idle through every write. Here batch N+1 is
decided while batch N is written, and nothing else changes: one batch at a time is made
durable, in order, and a batch is acknowledged (its offsets committable) only once it is
durable. A batch that fails is never acknowledged, nor is any batch after it.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import NoReturn, Protocol, TypeVar

from detector_worker.decision import BatchDecision
from detector_worker.records import RawRecord

M = TypeVar("M")


class BatchProcessor(Protocol):
    def decide(self, records: Sequence[RawRecord]) -> BatchDecision: ...

    async def make_durable(self, records: Sequence[RawRecord], decision: BatchDecision) -> None: ...


# Called with the batch and the error when a batch fails; it never returns (the process
# exits, and the batch is replayed from the last committed offset).
OnFailure = Callable[[Sequence[RawRecord], BaseException], NoReturn]


async def process_overlapped(
    batches: AsyncIterator[list[M]],
    to_records: Callable[[list[M]], list[RawRecord]],
    processor: BatchProcessor,
    ack: Callable[[list[M]], None],
    on_failure: OnFailure,
) -> None:
    """Decide each batch, wait for the previous one to be durable, then make this one
    durable in the background and acknowledge it when it is."""
    in_flight: asyncio.Task[None] | None = None
    try:
        async for batch in batches:
            records = to_records(batch)
            try:
                decision = processor.decide(records)
            except Exception as exc:
                on_failure(records, exc)
            if in_flight is not None:
                await in_flight
            in_flight = asyncio.create_task(
                _durable_then_ack(processor, batch, records, decision, ack, on_failure)
            )
        if in_flight is not None:
            await in_flight
    finally:
        if in_flight is not None and not in_flight.done():
            in_flight.cancel()


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
