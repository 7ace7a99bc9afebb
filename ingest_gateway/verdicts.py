"""Waiting for the detector's verdict on a transaction this gateway just published.

Every gateway process reads every partition of `verdicts` from its end at start-up (verdicts
are small and short-lived), resolving the futures of callers still waiting. A caller
registers *before* publishing, so a fast verdict cannot slip past unseen.

Callers that wait share one timer: a waiter whose time is up is answered None within
`_SLACK` seconds of its deadline, by a timer that serves every deadline due by then, instead
of a timer per request (docs/performance.md, the gateway's cost per request).
"""

import asyncio
import contextlib
import heapq
import itertools
import logging
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas import VerdictReceipt
from schemas.records import parse_transaction_key
from shared.kafka import topic_partitions

log = logging.getLogger(__name__)

# How late past its deadline a waiter may be answered: the timer serves every deadline due
# within it at once.
_SLACK = 0.01


class VerdictWaiter:
    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._waiting: dict[UUID, asyncio.Future[VerdictReceipt | None]] = {}
        # (deadline, sequence, future) of every caller waiting, earliest first.
        self._deadlines: list[tuple[float, int, asyncio.Future[VerdictReceipt | None]]] = []
        self._sequence = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        ids = await topic_partitions(self._bootstrap_servers, self._topic)
        partitions = [TopicPartition(self._topic, p) for p in ids]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        # Resolve the end offsets now, so verdicts produced from here on are all seen.
        for tp in partitions:
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="verdict-waiter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
        if self._timer is not None:
            self._timer.cancel()
        for future in self._waiting.values():
            future.cancel()

    def expect(self, transaction_id: UUID) -> "asyncio.Future[VerdictReceipt | None]":
        future: asyncio.Future[VerdictReceipt | None] = asyncio.get_running_loop().create_future()
        self._waiting[transaction_id] = future
        return future

    def forget(self, transaction_id: UUID) -> None:
        self._waiting.pop(transaction_id, None)

    async def wait(
        self, future: "asyncio.Future[VerdictReceipt | None]", seconds: float
    ) -> VerdictReceipt | None:
        """The verdict, or None when none came within `seconds` (from now)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        heapq.heappush(self._deadlines, (deadline, next(self._sequence), future))
        if self._timer is None or deadline + _SLACK < self._timer.when():
            self._set_timer(loop)
        return await future

    def _set_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(self._deadlines[0][0] + _SLACK, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        while self._deadlines and self._deadlines[0][0] <= now:
            future = heapq.heappop(self._deadlines)[2]
            if not future.done():
                future.set_result(None)
        if self._deadlines:
            self._set_timer(loop)

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    self._resolve(record.key, record.value)

    def _resolve(self, key: bytes | None, value: bytes | None) -> None:
        # The key is the transaction id: skip other gateways' verdicts without parsing them.
        if not self._waiting or not value or parse_transaction_key(key) not in self._waiting:
            return
        try:
            # pydantic's own JSON parser: a verdict carries no Decimal (nothing a float could
            # round); and only the fields the answer shows (docs/performance.md).
            verdict = VerdictReceipt.model_validate_json(value)
        except ValidationError:
            log.warning("skipping malformed verdict record")
            return
        future = self._waiting.pop(verdict.transaction_id, None)
        if future is not None and not future.done():
            future.set_result(verdict)
