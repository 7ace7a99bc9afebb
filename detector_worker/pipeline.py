"""One batch of records: decode, score, persist, publish. Returns only when all of it is durable.

The caller acknowledges the batch's offsets after `process` returns, so a crash anywhere
in here replays the batch (at least once); the idempotent writes make the replay harmless.
"""

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from psycopg import OperationalError
from psycopg_pool import PoolTimeout

from detector_worker.baseline_table import BaselineTable
from detector_worker.metrics import DetectorMetrics
from detector_worker.records import DeadLetter, RawRecord, decode_transaction
from detector_worker.scoring import ScoringConfig, score
from detector_worker.store import Scored, VerdictStore, make_alert
from schemas import Alert, Transaction, encode_model
from shared.kafka import Message, RenewableProducer, send_in_batches
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_TRANSIENT = (OperationalError, PoolTimeout, KafkaError, asyncio.TimeoutError)


async def retry_transient(
    stage: str, action: Callable[[], Awaitable[None]], metrics: DetectorMetrics
) -> None:
    """Retry a transient failure with capped exponential backoff, for as long as it takes.

    Consumption waits meanwhile (the batch is not acknowledged), so an outage of the
    database or the broker pauses the stream instead of skipping it.
    """
    delay = 0.2
    while True:
        try:
            await action()
            return
        except _TRANSIENT as exc:
            metrics.retries.labels(stage=stage).inc()
            log.warning(
                "transient failure, retrying",
                extra={"stage": stage, "error": repr(exc), "retry_in_s": delay},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


class DetectorPipeline:
    def __init__(
        self,
        settings: CommonSettings,
        scoring: ScoringConfig,
        table: BaselineTable,
        store: VerdictStore,
        producer: RenewableProducer,
        metrics: DetectorMetrics,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._scoring = scoring
        self._table = table
        self._store = store
        self._producer = producer
        self._metrics = metrics
        self._clock = clock

    async def process(self, records: Sequence[RawRecord]) -> None:
        transactions, dead = self._decode(records)
        now, view, config = self._clock(), self._table.view, self._scoring
        scored = [Scored(txn, score(txn, view, config, now)) for txn, _ in transactions.values()]
        alerts = [alert for alert in map(make_alert, scored) if alert is not None]
        if scored:
            await retry_transient(
                "persist", lambda: self._store.persist(scored, alerts), self._metrics
            )
        partitions = {txn.id: partition for txn, partition in transactions.values()}
        await retry_transient(
            "publish", lambda: self._publish(scored, partitions, alerts, dead), self._metrics
        )
        self._observe(records, scored, alerts, dead)

    def _decode(
        self, records: Sequence[RawRecord]
    ) -> tuple[dict[UUID, tuple[Transaction, int]], list[DeadLetter]]:
        """Valid transactions by id, each with the partition it came from; and dead letters."""
        transactions: dict[UUID, tuple[Transaction, int]] = {}
        dead: list[DeadLetter] = []
        for record in records:
            result = decode_transaction(record)
            if isinstance(result, DeadLetter):
                log.warning(
                    "dead-lettering record",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "transaction_id": record.key,
                        "reason": result.reason,
                        "error": result.error,
                    },
                )
                dead.append(result)
            else:
                # A producer retry can put the same transaction twice in one batch.
                transactions.setdefault(result.id, (result, record.partition))
        return transactions, dead

    async def _publish(
        self,
        scored: Sequence[Scored],
        partitions: Mapping[UUID, int],
        alerts: Sequence[Alert],
        dead: Sequence[DeadLetter],
    ) -> None:
        producer = self._producer.current
        try:
            await self._send_all(producer, scored, partitions, alerts, dead)
        except KafkaError as exc:
            # A dead producer is replaced before the retry, which sends the whole batch again.
            await self._producer.renew_if_broken(producer, exc)
            raise

    async def _send_all(
        self,
        producer: AIOKafkaProducer,
        scored: Sequence[Scored],
        partitions: Mapping[UUID, int],
        alerts: Sequence[Alert],
        dead: Sequence[DeadLetter],
    ) -> None:
        topics = self._settings
        sends: list[asyncio.Future[object]] = [
            await producer.send(
                topics.topic_dlq,
                key=letter.record.key,
                value=letter.record.value,
                headers=_dead_letter_headers(letter),
            )
            for letter in dead
        ]
        for alert in alerts:
            sends.append(
                await producer.send(
                    topics.topic_alerts,
                    key=str(alert.transaction_id).encode(),
                    value=encode_model(alert),
                )
            )
        # A verdict goes to the partition number its transaction came from: co-partitioned
        # with `transactions` (the same key's partition when the counts match), and sent as
        # whole record batches, a tenth of the cost of a send() per record.
        verdict_partitions = await producer.partitions_for(topics.topic_verdicts)
        by_partition: dict[int, list[Message]] = defaultdict(list)
        for item in scored:
            verdict = item.verdict
            partition = partitions[verdict.transaction_id] % len(verdict_partitions)
            by_partition[partition].append(
                (str(verdict.transaction_id).encode(), encode_model(verdict))
            )
        for partition, messages in by_partition.items():
            sends += await send_in_batches(producer, topics.topic_verdicts, partition, messages)
        await asyncio.gather(*sends)

    def _observe(
        self,
        records: Sequence[RawRecord],
        scored: Sequence[Scored],
        alerts: Sequence[Alert],
        dead: Sequence[DeadLetter],
    ) -> None:
        metrics, now = self._metrics, time.time()
        metrics.batch_size.observe(len(records))
        metrics.baseline_scopes.set(len(self._table))
        metrics.last_batch_timestamp.set(now)
        # Counted per batch, then added: one labels() lookup per distinct value, not per record.
        transactions = [item.transaction for item in scored]
        for category, count in Counter(t.category for t in transactions).items():
            metrics.transactions.labels(category=category).inc(count)
        for merchant, count in Counter(t.merchant for t in transactions).items():
            metrics.transactions_by_merchant.inc(merchant, count)
        for txn in transactions:
            if txn.received_at is not None:
                metrics.end_to_end_latency.observe(max(0.0, now - txn.received_at.timestamp()))
        metrics.anomalies.inc(len(alerts))
        for severity, count in Counter(alert.severity for alert in alerts).items():
            metrics.anomalies_by_severity.labels(severity=severity).inc(count)
        for reason, count in Counter(letter.reason for letter in dead).items():
            metrics.dead_letters.labels(reason=reason).inc(count)


def _dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    record = letter.record
    return [
        ("x-error-reason", letter.reason.encode()),
        ("x-error-message", letter.error.encode("utf-8", "replace")[:4096]),
        ("x-source-topic", record.topic.encode()),
        ("x-source-partition", str(record.partition).encode()),
        ("x-source-offset", str(record.offset).encode()),
    ]
