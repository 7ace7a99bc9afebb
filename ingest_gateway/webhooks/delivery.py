"""Delivering one event to one subscription: attempts, backoff, the circuit, the dead letter.

An event is retried (5xx, 429, timeout, connection error) until it is delivered or until
WEBHOOK_MAX_RETRY_SECONDS after it was read, then dead-lettered with its last error; any other
4xx, a redirect or a refused address is dead-lettered at once.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from aiokafka import TopicPartition
from psycopg import OperationalError
from psycopg_pool import PoolTimeout

from ingest_gateway.webhooks.attempts import AttemptResult, Verdict
from ingest_gateway.webhooks.backoff import Backoff, Draw
from ingest_gateway.webhooks.circuit import CircuitBreaker
from ingest_gateway.webhooks.matching import Subscription
from ingest_gateway.webhooks.metrics import NotifierMetrics
from ingest_gateway.webhooks.offsets import Ticket

log = logging.getLogger(__name__)
# While the database is away, a dead letter is written again after this long.
DEAD_LETTER_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Job:
    """One alert record for one subscription."""

    event_id: UUID
    body: bytes
    alert_id: UUID
    transaction_id: UUID
    partition: TopicPartition
    offset: int
    read_at: float  # monotonic seconds
    ticket: Ticket  # finished once this delivery has ended


@dataclass
class Endpoint:
    """A subscription and what the notifier knows of its receiver."""

    subscription: Subscription
    circuit: CircuitBreaker
    last_error: str = ""


class AttemptSender(Protocol):
    async def attempt(
        self, subscription: Subscription, event_id: str, body: bytes
    ) -> AttemptResult: ...


class DeadLetterSink(Protocol):
    async def record(self, letter: dict[str, object], event: bytes) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    backoff: Backoff
    max_retry_seconds: float


class Deliverer:
    def __init__(
        self,
        sender: AttemptSender,
        dead_letters: DeadLetterSink,
        metrics: NotifierMetrics,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        draw: Draw = random.uniform,
    ) -> None:
        self._sender = sender
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._draw = draw

    async def deliver(self, endpoint: Endpoint, job: Job) -> str:
        """Deliver or dead-letter `job`; returns the outcome (delivered, dead_lettered)."""
        deadline = job.read_at + self._policy.max_retry_seconds
        attempts, last = 0, None
        while True:
            wait = endpoint.circuit.wait_seconds(self._clock())
            if wait > 0:
                if self._clock() + wait > deadline:
                    break
                await self._sleep(wait)
            last = await self._attempt(endpoint, job, attempts)
            attempts += 1
            if last.verdict is Verdict.DELIVERED:
                return self._ended(job, "delivered")
            if last.verdict is Verdict.GIVE_UP:
                break
            delay = max(self._policy.backoff.delay(attempts - 1, self._draw), last.retry_after or 0)
            if self._clock() + delay > deadline:
                break
            await self._sleep(delay)
        await self._dead_letter(endpoint, job, attempts, last)
        return self._ended(job, "dead_lettered")

    async def _attempt(self, endpoint: Endpoint, job: Job, attempts: int) -> AttemptResult:
        if attempts:
            self._metrics.retries.inc()
        started = self._clock()
        result = await self._sender.attempt(endpoint.subscription, str(job.event_id), job.body)
        self._metrics.attempt_duration.observe(self._clock() - started)
        self._metrics.attempts.labels(result=result.result).inc()
        if result.receiver_failed:
            endpoint.circuit.record_failure(self._clock())
        else:
            endpoint.circuit.record_success()  # it answered: it is up
        if result.verdict is not Verdict.DELIVERED:
            endpoint.last_error = result.error
            log.info(
                "webhook attempt failed",
                extra={
                    "subscription_id": str(endpoint.subscription.id),
                    "event_id": str(job.event_id),
                    "transaction_id": job.transaction_id,
                    "error": result.error,
                    "attempt": attempts + 1,
                },
            )
        self._circuit_gauge(endpoint)
        return result

    def _circuit_gauge(self, endpoint: Endpoint) -> None:
        state = endpoint.circuit.state(self._clock())
        self._metrics.circuit_state.labels(subscription=str(endpoint.subscription.id)).set(state)

    def _ended(self, job: Job, outcome: str) -> str:
        self._metrics.deliveries.labels(outcome=outcome).inc()
        self._metrics.delivery_delay.observe(self._clock() - job.read_at)
        return outcome

    async def _dead_letter(
        self, endpoint: Endpoint, job: Job, attempts: int, last: AttemptResult | None
    ) -> None:
        reason = (
            last.error
            if last and last.verdict is Verdict.GIVE_UP
            else _exhausted(endpoint, attempts, last)
        )
        letter: dict[str, object] = {
            "event_id": job.event_id,
            "subscription_id": endpoint.subscription.id,
            "alert_id": job.alert_id,
            "transaction_id": job.transaction_id,
            "attempts": attempts,
            "last_error": reason,
            "last_status": last.status if last else None,
        }
        log.warning(
            "webhook dead-lettered",
            extra={k: str(v) for k, v in letter.items()} | {"transaction_id": job.transaction_id},
        )
        while True:
            try:
                await self._dead_letters.record(letter, job.body)
                return
            except (OperationalError, PoolTimeout) as exc:
                # Not done until it is written: the offset stays uncommitted meanwhile.
                log.warning("could not write a dead letter; retrying", extra={"error": repr(exc)})
                await self._sleep(DEAD_LETTER_RETRY_SECONDS)


def _exhausted(endpoint: Endpoint, attempts: int, last: AttemptResult | None) -> str:
    error = last.error if last else endpoint.last_error or "no attempt made"
    if last is None:
        return f"retry time exhausted while the receiver's circuit was open; last error: {error}"
    return f"retries exhausted after {attempts} attempts; last error: {error}"
