"""Routing alert records to per-subscription queues, and knowing which offsets are done.

Each subscription has its own queue and task, delivering one event at a time in the order
read: alerts of one transaction (one key, so one partition, read in order) reach a receiver in
order, and a dead receiver stalls only its own queue. A record's offset becomes committable
once every subscription's delivery of it has ended (delivered or dead-lettered).
"""

import asyncio
import logging
import time
from collections.abc import Callable
from uuid import UUID

from aiokafka import ConsumerRecord, TopicPartition
from pydantic import ValidationError

from ingest_gateway.webhooks.circuit import CircuitBreaker
from ingest_gateway.webhooks.delivery import Deliverer, Endpoint, Job
from ingest_gateway.webhooks.matching import Subscription, event_id, wants
from ingest_gateway.webhooks.metrics import NotifierMetrics
from ingest_gateway.webhooks.offsets import OffsetTracker, Ticket
from schemas import Alert, MalformedJson, decode_json, encode_model
from schemas.webhook import WebhookEvent

log = logging.getLogger(__name__)
CircuitFactory = Callable[[], CircuitBreaker]


class SubscriptionQueue:
    """One subscription's deliveries, one at a time, in the order they were queued."""

    def __init__(self, endpoint: Endpoint, deliverer: Deliverer) -> None:
        self.endpoint = endpoint
        self._deliverer = deliverer
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._current: Job | None = None
        self._task = asyncio.create_task(self._run(), name=f"webhook-{endpoint.subscription.id}")

    def put(self, job: Job) -> None:
        self._queue.put_nowait(job)

    async def _run(self) -> None:
        while True:
            self._current = await self._queue.get()
            try:
                await self._deliverer.deliver(self.endpoint, self._current)
            except Exception:
                # A bug, not a receiver's failure: the record stays uncommitted and is
                # delivered again after a restart.
                log.exception("webhook delivery crashed; stopping the notifier")
                raise
            self._current.ticket.finish()
            self._current = None

    @property
    def failed(self) -> BaseException | None:
        return self._task.exception() if self._task.done() and not self._task.cancelled() else None

    async def close(self, *, drop: bool) -> None:
        """Stop delivering. With `drop` (the subscription was deleted) what is queued counts
        as done, so the offsets move on; without, it stays uncommitted (shutdown)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if not drop:
            return
        left = [self._current] if self._current else []
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        for job in left:
            job.ticket.finish()


class Dispatcher:
    def __init__(
        self,
        deliverer: Deliverer,
        metrics: NotifierMetrics,
        circuit: CircuitFactory,
        tracker: OffsetTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker or OffsetTracker()
        self._deliverer = deliverer
        self._metrics = metrics
        self._circuit = circuit
        self._clock = clock
        self.queues: dict[UUID, SubscriptionQueue] = {}

    async def set_subscriptions(self, subscriptions: list[Subscription]) -> None:
        """Start queues for new subscriptions; stop (and drop) those of deleted ones."""
        live = {subscription.id: subscription for subscription in subscriptions}
        for gone in [sid for sid in self.queues if sid not in live]:
            queue = self.queues.pop(gone)
            await queue.close(drop=True)
            self._metrics.circuit_state.remove(str(gone))
            log.info("webhook subscription stopped", extra={"subscription_id": str(gone)})
        for sid, subscription in live.items():
            if sid not in self.queues:
                endpoint = Endpoint(subscription, self._circuit())
                self.queues[sid] = SubscriptionQueue(endpoint, self._deliverer)
                self._metrics.circuit_state.labels(subscription=str(sid)).set(0)

    def dispatch(self, record: ConsumerRecord[bytes, bytes]) -> None:
        partition = TopicPartition(record.topic, record.partition)
        alert = self._read(record)
        if alert is None:
            self.tracker.add(partition, record.offset, 0)
            return
        targets = [q for q in self.queues.values() if wants(q.endpoint.subscription, alert)]
        ticket = self.tracker.add(partition, record.offset, len(targets))
        read_at = self._clock()
        for queue in targets:
            queue.put(
                _job(queue.endpoint.subscription, alert, partition, record.offset, read_at, ticket)
            )
        self._metrics.in_flight.set(self.tracker.in_flight())

    def _read(self, record: ConsumerRecord[bytes, bytes]) -> Alert | None:
        try:
            return Alert.model_validate(decode_json(record.value or b""))
        except (MalformedJson, ValidationError) as exc:
            # Not ours to repair (the detector's dead-letter topic is for transactions): skip
            # it, counted and logged with where it is.
            self._metrics.bad_records.inc()
            log.error(
                "unreadable alert record skipped",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "transaction_id": record.key,
                    "error": str(exc)[:500],
                },
            )
            return None

    def crashed(self) -> BaseException | None:
        return next((q.failed for q in self.queues.values() if q.failed), None)

    async def close(self) -> None:
        for queue in self.queues.values():
            await queue.close(drop=False)
        self.queues.clear()


def _job(
    subscription: Subscription,
    alert: Alert,
    partition: TopicPartition,
    offset: int,
    read_at: float,
    ticket: Ticket,
) -> Job:
    event = WebhookEvent(
        event_id=event_id(alert.id, subscription.id), subscription_id=subscription.id, alert=alert
    )
    return Job(
        event_id=event.event_id,
        body=encode_model(event),
        alert_id=alert.id,
        transaction_id=alert.transaction_id,
        partition=partition,
        offset=offset,
        read_at=read_at,
        ticket=ticket,
    )
