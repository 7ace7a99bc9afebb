"""Turning raw Kafka records into transactions, or into dead letters with a reason."""

from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from schemas import MalformedJson, Transaction, decode_json

DeadLetterReason = Literal[
    "empty_value",
    "malformed_json",
    "unsupported_version",
    "invalid_schema",
    # The id of a transaction already seen with another body (a producer bug or an attack):
    # the first body stands, the other is never scored.
    "id_conflict",
    # A transaction PostgreSQL refuses to store though it validated (a value its types or
    # constraints do not hold): the rest of its batch is stored, it is never scored.
    "rejected_by_store",
]


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, ~1 µs
# an instance, and the detector makes three of these per record (RawRecord, Scored,
# OutgoingRecord; docs/performance.md, session 8). Nothing changes them once made.
@dataclass(slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    record: RawRecord
    reason: DeadLetterReason
    error: str


def decode_transaction(record: RawRecord) -> Transaction | DeadLetter:
    """Validate one record; never raises on bad input."""
    if not record.value:
        return DeadLetter(record, "empty_value", "record has no value")
    try:
        payload = decode_json(record.value)
    except MalformedJson as exc:
        return DeadLetter(record, "malformed_json", str(exc))
    if isinstance(payload, dict) and payload.get("schema_version", 1) != 1:
        # repr: the string "1" is not the number 1, and the message should say which it got.
        version = repr(payload.get("schema_version"))[:32]
        return DeadLetter(
            record, "unsupported_version", f"schema_version {version} not supported (1 is)"
        )
    try:
        # The value names the transaction; the key only places it on a partition. A producer
        # that keys by account or card (for its own ordering) is not refused for that.
        return Transaction.model_validate(payload)
    except ValidationError as exc:
        return DeadLetter(record, "invalid_schema", _summarise(exc))


def _summarise(error: ValidationError) -> str:
    parts = []
    for problem in error.errors()[:10]:
        field = ".".join(str(p) for p in problem["loc"]) or "(value)"
        parts.append(f"{field}: {problem['msg']}")
    return "; ".join(parts)
