"""One batch of records: decide (pure), then persist and publish until durable, then count.

The caller acknowledges the batch's offsets after `process` returns, so a crash anywhere
in here replays the batch (at least once); the idempotent writes make the replay harmless.
"""

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from detector_worker.baseline_table import BaselineTable
from detector_worker.decision import (
    BatchDecision,
    decide,
    mark_suppressed,
    refuse,
    refuse_conflicts,
)
from detector_worker.metrics import DetectorMetrics, observe_many
from detector_worker.ports import OutgoingRecord, RecordPublisher, VerdictWriter
from detector_worker.records import DeadLetter, RawRecord
from detector_worker.refused_rows import persist_isolating_refused
from detector_worker.retry import PERMANENT, StopCheck, never, retry_transient
from detector_worker.scoring import ScoringConfig
from detector_worker.verdict_json import encode_verdict
from schemas import encode_model
from schemas.records import (
    DLQ_RECORD_MAX_BYTES,
    dead_letter_headers,
    fit_dead_letter,
    transaction_key,
)
from shared.clock import Clock
from shared.settings import CommonSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class DetectorPipeline:
    def __init__(
        self,
        settings: CommonSettings,
        scoring: ScoringConfig,
        table: BaselineTable,
        store: VerdictWriter,
        publisher: RecordPublisher,
        metrics: DetectorMetrics,
        clock: Clock,
        stop_requested: StopCheck = never,
    ) -> None:
        self._settings = settings
        self._scoring = scoring
        self._table = table
        self._store = store
        self._publisher = publisher
        self._metrics = metrics
        self._clock = clock
        self._stop_requested = stop_requested
        # time.monotonic() when the batch in hand started; None between batches.
        self.batch_started: float | None = None

    async def process(self, records: Sequence[RawRecord]) -> None:
        """Decide, then make every effect durable. Returns only once the rows are committed
        and the broker has acknowledged every record sent: only then may the caller commit
        the batch's offsets. Raises (and the caller must not commit) on anything else,
        StopRequested included."""
        self.batch_started = time.monotonic()
        try:
            decision = await self._make_durable(records)
        finally:
            self.batch_started = None
        # Durable from here on: the batch's offsets may be committed.
        self._observe(records, decision)

    async def _make_durable(self, records: Sequence[RawRecord]) -> BatchDecision:
        decision = decide(records, self._table.view, self._scoring, self._clock())
        if decision.scored:
            decision = await self._persist(decision)
        _log_dead_letters(decision.dead_letters)
        await self._publish(decision)
        return decision

    async def _persist(self, decision: BatchDecision) -> BatchDecision:
        """Write the rows; the transactions whose id is stored with another body, and those
        PostgreSQL refuses, come back as dead letters instead, the alerts under a
        suppression rule marked as stored."""
        scored, alerts = decision.scored, decision.alerts
        persisted = await self._retry(
            "persist", lambda: persist_isolating_refused(self._store.persist, scored, alerts)
        )
        decision = refuse_conflicts(decision, persisted.conflicts)
        decision = refuse(decision, "rejected_by_store", persisted.refused)
        return mark_suppressed(decision, persisted.suppressed)

    async def _publish(self, decision: BatchDecision) -> None:
        outgoing = outgoing_records(decision, self._settings)
        try:
            await self._retry("publish", lambda: self._publisher.publish(outgoing))
        except PERMANENT as exc:
            # Kafka refuses a record whatever the retries (a limit below DLQ_RECORD_MAX_BYTES):
            # the dead letters go again with their headers only, the rest as it was.
            log.error(
                "a record is too large for Kafka; dead letters go without their value",
                extra={"error": repr(exc)},
            )
            bare = outgoing_records(decision, self._settings, dead_letter_bytes=0)
            await self._retry("publish", lambda: self._publisher.publish(bare))

    async def _retry(self, stage: str, action: Callable[[], Awaitable[T]]) -> T:
        return await retry_transient(stage, action, self._metrics, self._stop_requested)

    def _observe(self, records: Sequence[RawRecord], decision: BatchDecision) -> None:
        metrics, now = self._metrics, time.time()
        metrics.batch_size.observe(len(records))
        metrics.baseline_scopes.set(len(self._table))
        metrics.last_batch_timestamp.set(now)
        # Counted per batch, then added: one series update per distinct value, not per record.
        transactions = [item.transaction for item in decision.scored]
        for category, count in Counter(t.category for t in transactions).items():
            metrics.transactions.inc(category, count)
        for merchant, count in Counter(t.merchant for t in transactions).items():
            metrics.transactions_by_merchant.inc(merchant, count)
        observe_many(
            metrics.end_to_end_latency,
            (
                max(0.0, now - t.received_at.timestamp())
                for t in transactions
                if t.received_at is not None
            ),
        )
        # Suppressed alerts under their own label value: no paging rule counts them.
        kinds = Counter(
            (alert.severity, str(alert.suppressed).lower()) for alert in decision.alerts
        )
        for (severity, suppressed), count in kinds.items():
            metrics.anomalies.labels(suppressed=suppressed).inc(count)
            metrics.anomalies_by_severity.labels(severity=severity, suppressed=suppressed).inc(
                count
            )
        for reason, count in Counter(letter.reason for letter in decision.dead_letters).items():
            metrics.dead_letters.labels(reason=reason).inc(count)


def outgoing_records(
    decision: BatchDecision, topics: CommonSettings, dead_letter_bytes: int = DLQ_RECORD_MAX_BYTES
) -> list[OutgoingRecord]:
    """What a decision sends: dead letters (shortened past `dead_letter_bytes`), alerts, then
    verdicts (each to the partition number its transaction came from: co-partitioned with
    `transactions`)."""
    records = [
        _dead_letter_record(letter, topics.topic_dlq, dead_letter_bytes)
        for letter in decision.dead_letters
    ]
    records += [
        OutgoingRecord(topics.topic_alerts, transaction_key(a.transaction_id), encode_model(a))
        for a in decision.alerts
    ]
    records += [
        OutgoingRecord(
            topics.topic_verdicts,
            transaction_key(item.verdict.transaction_id),
            encode_verdict(item.verdict),
            co_partition=item.source.partition,
        )
        for item in decision.scored
    ]
    return records


def _dead_letter_record(letter: DeadLetter, topic: str, max_bytes: int) -> OutgoingRecord:
    record = letter.record
    headers = dead_letter_headers(
        letter.reason, letter.error, record.topic, record.partition, record.offset
    )
    value, headers = fit_dead_letter(record.key, record.value, headers, max_bytes)
    return OutgoingRecord(topic, record.key, value, headers)


def _log_dead_letters(letters: Sequence[DeadLetter]) -> None:
    for letter in letters:
        record = letter.record
        log.warning(
            "dead-lettering record",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "transaction_id": record.key,
                "reason": letter.reason,
                "error": letter.error,
            },
        )
