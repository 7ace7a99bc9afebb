"""Kafka plumbing: explicit topic creation and the producer every worker uses."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerFenced, for_code

from shared.partitioner import default_partition
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
# How long a producer's stop may wait for the broker to acknowledge what is buffered.
STOP_FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def project_topics(settings: CommonSettings) -> list[TopicSpec]:
    """Every topic of the system with its settings: partitions, retention, compaction."""
    parts, rf = settings.topic_partitions, settings.topic_replication_factor
    day_ms = str(24 * 3600 * 1000)
    return [
        TopicSpec(settings.topic_transactions, parts, rf, {"retention.ms": str(7 * int(day_ms))}),
        # One record per scope survives compaction; tombstones go after a day.
        TopicSpec(
            settings.topic_baselines,
            parts,
            rf,
            {
                "cleanup.policy": "compact",
                "delete.retention.ms": day_ms,
                "min.cleanable.dirty.ratio": "0.1",
                "segment.ms": str(3600 * 1000),
            },
        ),
        TopicSpec(settings.topic_alerts, parts, rf, {"retention.ms": str(30 * int(day_ms))}),
        # Verdicts only serve callers waiting for an answer: short retention.
        TopicSpec(settings.topic_verdicts, parts, rf, {"retention.ms": str(3600 * 1000)}),
        TopicSpec(settings.topic_dlq, parts, rf, {"retention.ms": str(30 * int(day_ms))}),
    ]


async def ensure_topics(bootstrap_servers: str, topics: list[TopicSpec]) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                    topic_configs=spec.config,
                )
                for spec in topics
            ]
        )
        for topic, error_code, *rest in response.topic_errors:
            if error_code not in (0, _TOPIC_ALREADY_EXISTS):
                message = rest[0] if rest else ""
                raise for_code(error_code)(f"creating topic {topic}: {message}")
            if error_code == 0:
                log.info("created topic", extra={"topic": topic})
    finally:
        await admin.close()


async def topic_partitions(
    bootstrap_servers: str, topic: str, *, wait_seconds: float = 30.0
) -> list[int]:
    """The partition ids of an existing topic, from the broker's metadata.

    A topic created a moment ago may still answer "unknown" or "leader not available"
    while its metadata spreads: that is waited out, up to `wait_seconds`.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    deadline = asyncio.get_running_loop().time() + wait_seconds
    try:
        while True:
            for entry in await admin.describe_topics([topic]):
                if entry["topic"] == topic and entry["error_code"] == 0 and entry["partitions"]:
                    return sorted(p["partition"] for p in entry["partitions"])
            if asyncio.get_running_loop().time() > deadline:
                raise TopicUnavailable(f"topic {topic} does not exist (or has no leader)")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


class TopicUnavailable(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """A topic that does not exist, or has no leader, after the wait (a KafkaError, so that it
    is retried as Kafka being away, and a KeyError of a bug is not)."""


def make_producer(
    bootstrap_servers: str, *, linger_ms: int = 5, transactional_id: str | None = None
) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a retried send never writes a record twice.

    With a `transactional_id`, records sent inside `producer.transaction()` become visible
    to read_committed consumers all together or not at all, and a newer producer with the
    same id fences an older one (a leader that lost its lock cannot publish any more).
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
        transactional_id=transactional_id,
        partitioner=default_partition,
    )


async def start_with_backoff(
    start: Callable[[], Awaitable[None]],
    reset: Callable[[], Awaitable[None]],
    max_delay: float = 30.0,
) -> None:
    """`start()` until it succeeds, `reset()` and a growing pause after each failure to reach
    Kafka: for a process that serves meanwhile (the gateway answers reads and /health while
    Kafka is away at its start, and says so in /ready and its POSTs)."""
    delay = 1.0
    while True:
        try:
            await start()
            return
        # TopicUnavailable (a KafkaError): topic_partitions() found no such topic or no leader
        # yet (the gateway started before the topics were made, or during a leader election).
        except (KafkaError, OSError) as exc:
            log.warning(
                "Kafka unreachable; retrying", extra={"error": repr(exc), "retry_in_seconds": delay}
            )
        await reset()
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


class RenewableProducer:
    """The worker's producer, replaced by a new one when it can never send again.

    An AIOKafkaProducer whose sender task has ended (OutOfOrderSequenceNumber after a broker
    restart lost the tail of a partition, a fenced producer id, an unexpected error) fails
    every later send with a copy of that error: retrying with it waits forever. Only a new
    producer, with a new producer id, recovers. Records of the failed sends are sent again by
    the caller's retry (at least once; the consumers key on the transaction id).
    """

    def __init__(self, factory: Callable[[], AIOKafkaProducer]) -> None:
        self._factory = factory
        self._producer = factory()
        self._renewing = asyncio.Lock()
        self._background: set[asyncio.Task[bool]] = set()
        self.renewals = 0
        self.started = False

    @property
    def current(self) -> AIOKafkaProducer:
        return self._producer

    async def start(self) -> None:
        await self._producer.start()
        self.started = True

    async def start_when_reachable(self) -> None:
        """start(), retried while no broker answers (see start_with_backoff)."""
        await start_with_backoff(self.start, self._replace_unstarted)

    async def _replace_unstarted(self) -> None:
        # A producer whose start failed is not started again: a new one is.
        with suppress(Exception):
            await self._producer.stop()
        self._producer = self._factory()

    async def stop(self, flush_seconds: float = STOP_FLUSH_SECONDS) -> None:
        """Flush what is still buffered and close, within `flush_seconds`: aiokafka's stop
        waits until the broker acknowledged every record, so a broker gone silent (frozen,
        partitioned) held a SIGTERM for as long as it stayed so. Past the bound the records
        left are not delivered by this process (a caller that sent them was told the outcome
        is unknown, or did not commit what they were for) and its connections are dropped
        as it exits."""
        for task in list(self._background):
            with suppress(Exception):
                await task
        if self.started:
            try:
                await asyncio.wait_for(self._producer.stop(), flush_seconds)
            except TimeoutError:
                log.error(
                    "Kafka did not acknowledge the buffered records in time; stopping without",
                    extra={"seconds": flush_seconds},
                )
            return
        with suppress(Exception):  # never started (Kafka never answered): nothing buffered
            await self._producer.stop()

    def is_broken(self, producer: AIOKafkaProducer, error: BaseException) -> bool:
        """Whether `producer`, which raised `error`, can never send again."""
        if isinstance(error, OutOfOrderSequenceNumber | ProducerFenced):
            return True
        # aiokafka has no public "alive" check: its sender task is what ends.
        sender = getattr(producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        return task is not None and task.done()

    async def renew_if_broken(self, producer: AIOKafkaProducer, error: BaseException) -> bool:
        """Replace `producer` if `error` means it is dead; True if it was (or already had
        been) replaced. Concurrent callers with the same dead producer renew it once."""
        if not self.is_broken(producer, error):
            return False
        async with self._renewing:
            if self._producer is producer:
                log.warning(
                    "producer cannot send any more; starting a new one",
                    extra={"error": repr(error)},
                )
                fresh = self._factory()
                try:
                    await fresh.start()
                except BaseException:
                    await fresh.stop()  # the broker may still be away: the caller retries
                    raise
                self._producer, self.renewals = fresh, self.renewals + 1
                with suppress(Exception):  # its batches have failed already
                    await asyncio.wait_for(producer.stop(), 5)
        return True

    def renew_soon(self, producer: AIOKafkaProducer, error: BaseException) -> None:
        """renew_if_broken in the background, for a caller that must answer now (an HTTP
        request gets its 503 at once; the requests after it get the new producer)."""
        if not self.is_broken(producer, error) or self._background:
            return
        task = asyncio.create_task(self._renew_logged(producer, error))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _renew_logged(self, producer: AIOKafkaProducer, error: BaseException) -> bool:
        try:
            return await self.renew_if_broken(producer, error)
        except Exception as exc:  # the broker is still away: the next failure tries again
            log.warning("could not start a new producer", extra={"error": repr(exc)})
            return False


Message = tuple[bytes | None, bytes | None]


async def send_in_batches(
    producer: AIOKafkaProducer, topic: str, partition: int, messages: Iterable[Message]
) -> list[asyncio.Future[object]]:
    """Queue many (key, value) records for one partition as whole record batches.

    Much cheaper than a `send()` per record (no partitioner call, no future per record);
    returns one future per batch, done when the broker has acknowledged it.
    """
    sent: list[asyncio.Future[object]] = []
    batch = producer.create_batch()
    for key, value in messages:
        if batch.append(key=key, value=value, timestamp=None) is None:
            sent.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record for {topic} is larger than the producer's batch size")
    if batch.record_count():
        sent.append(await producer.send_batch(batch, topic, partition=partition))
    return sent
