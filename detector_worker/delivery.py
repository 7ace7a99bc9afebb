"""Records from Faust's consumer to the agent a fetch at a time, not a record at a time.

Faust (faust-streaming 0.15) hands each fetched record to its agent on its own: a
`wait_first` per record (four tasks and an `asyncio.wait`), the conductor's callback (a lock,
a decode into an `Event`, a queue put), then the stream's iterator (a queue get, the
current-event context, sensors, processors, an ack). That was half of the detector's CPU,
about 100 µs a record (docs/performance.md, "Faust per record").

Here the consumer puts each fetch's records, as Faust `Message`s, into one `RecordInbox` in a
single step, and the agent takes them out in bulk (detector_worker/batching.py). What Faust
does for the group stays Faust's: the consumer (run on the agent's loop, not in a thread:
`InlineConsumerThread`), rebalances, seeks, the
flow control that stops delivery during a rebalance (the inbox is a flow-controlled queue,
emptied when partitions are revoked, as Faust's own stream buffers are), the read offsets
and gaps, and the commits: a message's offset is committed only once the agent acks it,
after its batch is durable.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, ConsumerT, Message
from mode import Service, ServiceT
from mode.utils.futures import maybe_async
from mode.utils.queues import FlowControlQueue

log = logging.getLogger(__name__)

# How long a stop waits for the consumer to close (see InlineConsumerThread.stop).
CONSUMER_STOP_SECONDS = 3.0


class RecordInbox:
    """The fetched records of one topic, a list per fetch, waiting for the agent."""

    def __init__(self, app: faust.App, topic: str, max_fetches: int = 4) -> None:
        self.app = app
        self.topic = topic
        # clear_on_resume: Faust empties it when a rebalance starts (its `flow_control.clear`).
        self.queue: FlowControlQueue[list[Message]] = FlowControlQueue(
            maxsize=max_fetches, flow_control=app.flow_control, clear_on_resume=True
        )

    def put_nowait(self, messages: list[Message]) -> bool:
        """Into the queue at once when there is room and the flow is not suspended (the
        usual case: the agent takes each fetch as it comes); False when the caller must wait
        (`BatchConsumer._put`)."""
        if self.queue.full() or not self.app.flow_control.is_active():
            return False
        self.queue.put_nowait(messages)
        return True

    def take_nowait(self) -> list[Message]:
        """Every record waiting, tracked by the consumer as being processed (wait_empty waits
        for their acks); records fetched before a rebalance are dropped, never processed (the
        new owner of their partition reads them again from the committed offset)."""
        messages: list[Message] = []
        while not self.queue.empty():
            messages += self.queue.get_nowait()
        return self._accept(messages)

    async def take(self) -> list[Message]:
        """Wait for records, then take every one waiting."""
        first = await self.queue.get()
        return self._accept(first) + self.take_nowait()

    def _accept(self, messages: list[Message]) -> list[Message]:
        app = self.app
        if not messages:
            return messages
        generation = app.consumer_generation_id
        if not app.flow_control.is_active():
            return []
        current = [m for m in messages if m.generation_id == generation]
        consumer = app.consumer
        for message in current:
            consumer.track_message(message)
        return current

    def ack(self, messages: Sequence[Message]) -> None:
        """Their offsets may be committed (Faust's commit loop commits them)."""
        ack = self.app.consumer.ack
        for message in messages:
            ack(message)


class InlineConsumerThread(AIOKafkaConsumerThread):
    """Faust's aiokafka consumer service, run on the app's event loop instead of a thread.

    Faust runs its aiokafka consumer in a thread with a loop of its own, and every call to it
    (each fetch, each commit, each position or seek) is a round trip between the two loops:
    a `call_soon_threadsafe` there, a queue and a worker task, the call, a
    `call_soon_threadsafe` back. At ~10 records a batch that was ~40 thread hand-offs and ~35
    loop turns a batch, most of the detector's CPU on the verdict path (docs/performance.md,
    session 9). Here the same aiokafka consumer, with Faust's own settings and rebalance
    listener, runs on the app's loop and each call is a plain await. The thread's purpose,
    heartbeats while the agent holds the loop, is kept by aiokafka's own heartbeat task:
    a batch holds the loop for milliseconds, the session timeout is seconds.
    """

    def __init__(self, consumer: Consumer, **kwargs: Any) -> None:
        super().__init__(consumer, thread_loop=kwargs.get("loop") or consumer.loop, **kwargs)

    async def start(self) -> None:
        """As a service of the app's loop (no thread, no method queue). A start that fails
        (the broker unreachable, or the start cancelled) shuts down at once, as the thread
        does (mode's `ServiceThread._serve`): the aiokafka consumer it made, and its client's
        connections, are closed whether or not a stop follows."""
        self._thread_started.set()
        try:
            await Service.start(self)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """What the thread would do on its way out, in this loop: stop the consumer (Faust's
        `on_thread_stop`), then the service's children, tasks and exit stacks.

        Bounded: aiokafka's stop lets the group coordination finish and asks the broker to
        leave the group, each waiting up to the request timeout (Faust's 90 s), so with a
        broker gone silent (frozen, partitioned) a SIGTERM waited for it to answer again.
        Past the bound the consumer is left as it is: the process is leaving, and the group
        coordinator drops the member after its session timeout (its uncommitted records
        are replayed by the next owner)."""
        if self._started.is_set() and not self._stopped.is_set():
            self._stopped.set()
            try:
                await asyncio.wait_for(self._close(), CONSUMER_STOP_SECONDS)
            except TimeoutError:
                log.warning(
                    "the Kafka consumer did not stop in time; leaving it",
                    extra={"seconds": CONSUMER_STOP_SECONDS},
                )

    async def _close(self) -> None:
        await self.on_stop()
        await self._shutdown_thread()
        await self.on_shutdown()

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))

    async def cast_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.add_future(maybe_async(fun(*args, **kwargs)))


class BatchConsumer(Consumer):
    """Faust's aiokafka consumer, delivering each fetch of an inbox's topic in one step, its
    aiokafka consumer on the app's loop (`InlineConsumerThread`)."""

    inbox: RecordInbox | None = None

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return InlineConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def threadsafe_partitions_revoked(
        self, receiver_loop: asyncio.AbstractEventLoop, revoked: set[TP]
    ) -> None:
        """Faust's rebalance callback, awaited in place: the consumer shares the app's loop."""
        await self.on_partitions_revoked(revoked)

    async def threadsafe_partitions_assigned(
        self,
        receiver_loop: asyncio.AbstractEventLoop,
        assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        await self.on_partitions_assigned(assigned, generation_id)

    def track_message(self, message: Message) -> None:
        """Pending its ack (what Faust's wait_empty waits for at a rebalance or a stop).
        Faust's sensors are not told of each record: its Monitor's counters cost ~1.4 µs a
        record and nothing reads them (the detector's metrics are its own)."""
        self._unacked_messages.add(message)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's loop (faust/transport/consumer.py) with one delivery per fetch."""
        fetcher_stopped = cast(Any, fetcher)._stopped.is_set
        try:
            while not (self._stopped.is_set() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                messages = await self._fetch()
                # One turn of the loop (Faust's `self.sleep(0)` is a `wait_for` on a task:
                # a task made, cancelled and awaited, three turns, each fetch).
                await asyncio.sleep(0)
                if messages and not self.should_stop:
                    await self._deliver(messages)
                del messages  # not kept alive while the next fetch waits
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _fetch(self) -> list[Message]:
        """The next fetch of the active partitions, as Faust's `getmany` filters it, with
        the records before a partition's read offset dropped and the gaps recorded."""
        records, active = await self._wait_next_records(1.0)
        generation = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return []
        if not self.flow_active:  # a rebalance began during the fetch: as Faust's getmany
            await self.perform_seek()
            return []
        messages: list[Message] = []
        for tp, tp_records in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            await self._read_past(tp, [self._to_message(tp, r) for r in tp_records], messages)
        if self.app.consumer_generation_id != generation:
            return []
        return messages

    async def _read_past(self, tp: TP, fetched: list[Message], into: list[Message]) -> None:
        read = self._read_offset[tp]
        acks = self.app.topics.acks_enabled_for(tp.topic)
        for message in fetched:
            offset = message.offset
            if read is not None and offset < read:
                continue  # already delivered: a fetch from before a seek
            if read and offset - read > 1 and acks:
                await self._add_gap(tp, read + 1, offset)
            into.append(message)
            read = offset

    async def _deliver(self, messages: list[Message]) -> None:
        """Into the inbox in one step, or record by record through Faust's conductor for any
        other topic; abandoned when a rebalance suspends the flow (as Faust does)."""
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        inbox = self.inbox
        topic = inbox.topic if inbox is not None else None
        for message in (m for m in messages if m.topic != topic):
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            self._read_offset[message.tp] = message.offset
        batch = [m for m in messages if m.topic == topic]
        if inbox is None or not batch:
            return
        if not self.suspend_flow.is_set() and inbox.put_nowait(batch):
            self._mark_read(batch)  # without wait_first's tasks when nothing is to wait for
            return
        put = self._put(inbox, batch)
        results = await self.wait_first(put, self.suspend_flow.wait())
        if put in results.done:
            self._mark_read(batch)

    def _mark_read(self, messages: list[Message]) -> None:
        for message in messages:
            self._read_offset[message.tp] = message.offset

    @staticmethod
    async def _put(inbox: RecordInbox, messages: list[Message]) -> None:
        await inbox.app.flow_control.acquire()
        await inbox.queue.put(messages)


class DetectorApp(faust.App):
    """A Faust app whose consumer delivers its inbox's topic a fetch at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox: RecordInbox | None = None
        self._overdue_stop: tuple[float, Callable[[], None]] | None = None

    def leave_when_stop_overdue(self, seconds: float, leave: Callable[[], None]) -> None:
        """Call `leave` (which must not return) if a stop has not ended `seconds` after it
        began: a stop that waits on a dependency gone silent (a frozen broker holds Faust's
        offset commit in its stop, or a batch's first publish) would otherwise wait for it
        to answer again, past the supervisor's SIGKILL. Nothing is lost: the batch in hand
        was not committed, and the next owner of its partitions replays it."""
        self._overdue_stop = (seconds, leave)

    async def on_stop(self) -> None:
        if self._overdue_stop is not None:
            asyncio.get_running_loop().call_later(*self._overdue_stop)
        await super().on_stop()

    def inbox(self, topic: str, max_fetches: int = 4) -> RecordInbox:
        self._inbox = RecordInbox(self, topic, max_fetches)
        return self._inbox

    def _new_consumer(self) -> ConsumerT:
        consumer = BatchConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.loop,
        )
        consumer.inbox = self._inbox
        return consumer
