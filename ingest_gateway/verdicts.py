"""Waiting for the detector's verdict on a transaction this gateway just published.

Every gateway process reads every partition of `verdicts` from its end at start-up (verdicts
are small and short-lived), resolving the futures of callers still waiting. A caller
registers *before* publishing, so a fast verdict cannot slip past unseen.

Callers that wait share one timer: a waiter whose time is up is answered None within
`_SLACK` seconds of its deadline, by a timer that serves every deadline due by then, instead
of a timer per request (docs/performance.md, the gateway's cost per request). Every caller
waits the same time, so deadlines come due in the order they were set: a queue, not a heap.

A verdict is looked up by its raw record key before anything of it is decoded: on a
deployment of several gateways most verdicts are for another gateway's callers.
"""

import asyncio
import contextlib
import logging
from collections import deque
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas import VerdictReceipt
from schemas.records import transaction_key
from shared.kafka import start_with_backoff, topic_partitions

log = logging.getLogger(__name__)

# How late past its deadline a waiter may be answered: the timer serves every deadline due
# within it at once.
_SLACK = 0.01
# Before a failed reader is replaced: 1 s, doubled up to 30 s while each new reader fails
# within a minute (an error that repeats is not retried, nor logged, every second).
_RESTART_PAUSE, _MAX_RESTART_PAUSE, _HEALTHY_SECONDS = 1.0, 30.0, 60.0


class VerdictWaiter:
    def __init__(self, bootstrap_servers: str, topic: str, seconds: float) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._seconds = seconds
        # By record key (the transaction id's text).
        self._waiting: dict[bytes, asyncio.Future[VerdictReceipt | None]] = {}
        # (deadline, future) of every caller waiting, earliest first.
        self._deadlines: deque[tuple[float, asyncio.Future[VerdictReceipt | None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._consumer = self._new_consumer()
        self._following = False
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """Following the verdicts topic (until then a waiting caller gets its 202 at the
        deadline); False while a reader that failed is being replaced (a /ready that says
        so)."""
        return self._following and self._task is not None and not self._task.done()

    async def start_when_reachable(self) -> None:
        """start(), retried while no broker answers (see start_with_backoff)."""
        await start_with_backoff(self.start, self._replace_unstarted)

    async def _replace_unstarted(self) -> None:
        with contextlib.suppress(Exception):
            await self._consumer.stop()
        self._consumer = self._new_consumer()

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers, group_id=None, enable_auto_commit=False
        )

    async def start(self) -> None:
        await self._follow_from_end()
        self._task = asyncio.create_task(self._run(), name="verdict-waiter")
        self._task.add_done_callback(_log_end)

    async def _follow_from_end(self) -> None:
        await self._consumer.start()
        ids = await topic_partitions(self._bootstrap_servers, self._topic)
        partitions = [TopicPartition(self._topic, p) for p in ids]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        # Resolve the end offsets now, so verdicts produced from here on are all seen.
        for tp in partitions:
            await self._consumer.position(tp)
        self._following = True

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
        self._waiting[transaction_key(transaction_id)] = future
        return future

    def forget(self, transaction_id: UUID) -> None:
        self._waiting.pop(transaction_key(transaction_id), None)

    async def wait(self, future: "asyncio.Future[VerdictReceipt | None]") -> VerdictReceipt | None:
        """The verdict, or None when none came within the waiter's seconds (from now)."""
        loop = asyncio.get_running_loop()
        self._deadlines.append((loop.time() + self._seconds, future))
        if self._timer is None:  # else it is set for an earlier deadline
            self._set_timer(loop)
        return await future

    def _set_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_at(self._deadlines[0][0] + _SLACK, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        while self._deadlines and self._deadlines[0][0] <= now:
            future = self._deadlines.popleft()[1]
            if not future.done():
                future.set_result(None)
        if self._deadlines:
            self._set_timer(loop)

    async def _run(self) -> None:
        """Read verdicts until stopped. A reader that fails (an error aiokafka does not
        recover from by itself) is replaced by a new consumer from the topic's end, so the
        gateway does not stay without verdicts until someone restarts it; callers waiting
        meanwhile get their 202 at their deadline."""
        loop, pause = asyncio.get_running_loop(), _RESTART_PAUSE
        while True:
            started = loop.time()
            try:
                await self._read()
            except Exception:
                self._following = False
                log.exception(
                    "the verdict reader failed; following the verdicts again",
                    extra={"retry_in_seconds": pause},
                )
                # A failure that repeats at once is retried less and less often.
                pause = _RESTART_PAUSE if loop.time() - started > _HEALTHY_SECONDS else pause
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_RESTART_PAUSE)
                await self._replace_unstarted()
                await start_with_backoff(self._follow_from_end, self._replace_unstarted)

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    self._resolve(record.key, record.value)

    def _resolve(self, key: bytes | None, value: bytes | None) -> None:
        # The key is the transaction id: skip other gateways' verdicts without decoding them.
        future = self._waiting.get(key) if key else None
        if future is None or future.done() or not value:
            return
        try:
            # pydantic's own JSON parser: a verdict carries no Decimal (nothing a float could
            # round); and only the fields the answer shows (docs/performance.md).
            verdict = VerdictReceipt.model_validate_json(value)
        except ValidationError:
            log.warning("skipping malformed verdict record", extra={"transaction_id": key})
            return
        if transaction_key(verdict.transaction_id) != key:
            log.warning("skipping verdict keyed by another id", extra={"transaction_id": key})
            return
        del self._waiting[key]
        future.set_result(verdict)


def _log_end(task: "asyncio.Task[None]") -> None:
    """The reader ends only when stopped (a failure of its own is followed by a new reader):
    anything else is said at once (and /ready says the verdicts are no longer followed)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("the verdict reader stopped", exc_info=error)
