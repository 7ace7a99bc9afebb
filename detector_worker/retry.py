"""Which failures of a batch's effects are retried, and how a stop interrupts the retrying.

A tiny error hierarchy decides: transient (the database or the broker away for a while) is
retried with capped exponential backoff for as long as it takes; permanent (a record Kafka
refuses whatever the retries) and anything else go to the caller at once.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from psycopg import DataError, IntegrityError, OperationalError
from psycopg_pool import PoolTimeout

from detector_worker.metrics import DetectorMetrics
from shared.tasks import hold_until_done

log = logging.getLogger(__name__)

TRANSIENT = (OperationalError, PoolTimeout, KafkaError, asyncio.TimeoutError)
# Too large for the producer or the broker: sending it again fails the same way.
PERMANENT = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
# PostgreSQL refusing the rows themselves (a value its types or constraints do not hold):
# the same rows fail the same way at every attempt, and an outage never raises these.
REFUSED_BY_STORE = (DataError, IntegrityError)
# How often a retrying batch looks whether a stop was asked for.
_STOP_POLL_SECONDS = 0.2
# How long a stop waits for the attempt in flight to end its cancellation.
_CANCEL_GRACE_SECONDS = 0.5
_FIRST_DELAY_SECONDS, _MAX_DELAY_SECONDS = 0.2, 10.0

T = TypeVar("T")
StopCheck = Callable[[], bool]


class StopRequested(Exception):
    """A stop was asked for while a batch was being retried. Its effects are not durable:
    the caller must leave without acknowledging the batch, which is replayed later."""


def never() -> bool:
    return False


async def retry_transient(
    stage: str,
    action: Callable[[], Awaitable[T]],
    metrics: DetectorMetrics,
    stop_requested: StopCheck = never,
) -> T:
    """Run `action` until it succeeds, retrying transient failures.

    Consumption waits meanwhile (the batch is not acknowledged), so an outage of the
    database or the broker pauses the stream instead of skipping it. Once an attempt has
    failed, a stop ends the waiting and the attempt in flight with StopRequested.
    """
    delay, failed = _FIRST_DELAY_SECONDS, False
    while True:
        try:
            attempt = action()
            return await (_unless_stopped(attempt, stop_requested) if failed else attempt)
        except PERMANENT:
            raise
        except TRANSIENT as exc:
            failed = True
            metrics.retries.labels(stage=stage).inc()
            log.warning(
                "transient failure, retrying",
                extra={"stage": stage, "error": repr(exc), "retry_in_s": delay},
            )
            await _pause(delay, stop_requested)
            delay = min(delay * 2, _MAX_DELAY_SECONDS)


async def _pause(seconds: float, stop_requested: StopCheck) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        if stop_requested():
            raise StopRequested("stop requested while retrying")
        await asyncio.sleep(min(remaining, _STOP_POLL_SECONDS))


async def _unless_stopped(attempt: Awaitable[T], stop_requested: StopCheck) -> T:
    task = asyncio.ensure_future(attempt)
    try:
        while not task.done():
            if stop_requested():
                raise StopRequested("stop requested while retrying")
            await asyncio.wait({task}, timeout=_STOP_POLL_SECONDS)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            # Its cancellation may wait on a database gone silent (psycopg asks the server to
            # cancel: up to 10 s). A stop waits a moment, not that: the batch is not durable
            # either way, and the process leaves (app.exit_for).
            await asyncio.wait({task}, timeout=_CANCEL_GRACE_SECONDS)
            hold_until_done(task)
