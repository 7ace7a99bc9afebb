"""What the pipeline needs from the database and the broker: two small ports, so that it runs
against hand-written fakes in tests and against PostgreSQL and Kafka in production."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from detector_worker.decision import Scored
from schemas import Alert
from schemas.records import Headers


@dataclass(slots=True)  # not frozen: see records.RawRecord
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    # The partition number of the record this one answers: sent to the same number (modulo
    # the topic's partition count) instead of the partition its key hashes to.
    co_partition: int | None = None


@dataclass(frozen=True, slots=True)
class Persisted:
    """What a write found: the transaction ids stored already with another body (nothing of
    theirs was written), the alerts under a live suppression rule (transaction id -> the
    rule's id), which were stored marked suppressed, and the transactions PostgreSQL refused
    (id -> its message; nothing of theirs was written either)."""

    conflicts: set[UUID] = field(default_factory=set)
    suppressed: dict[UUID, UUID] = field(default_factory=dict)
    refused: dict[UUID, str] = field(default_factory=dict)


class VerdictWriter(Protocol):
    async def persist(self, batch: Sequence[Scored], alerts: Sequence[Alert]) -> Persisted:
        """Write the rows and alerts in one transaction, idempotently; return once committed."""


class RecordPublisher(Protocol):
    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Send every record; return once the broker has acknowledged all of them."""
