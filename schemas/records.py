"""What a Kafka record carries besides its value: the transaction-id key and dead-letter headers.

`transactions`, `alerts` and `verdicts` are keyed by the transaction id, written as the UUID's
canonical text. A record on `transactions.dlq` keeps the original key and bytes and says why
in its headers.
"""

from uuid import UUID

# The reason, one of a closed set (the detector's DeadLetterReason).
DLQ_REASON = "x-error-reason"
# A human explanation, at most DLQ_MESSAGE_MAX_BYTES of UTF-8.
DLQ_MESSAGE = "x-error-message"
# Where the original record was read: topic, partition and offset, as decimal text.
DLQ_SOURCE_TOPIC = "x-source-topic"
DLQ_SOURCE_PARTITION = "x-source-partition"
DLQ_SOURCE_OFFSET = "x-source-offset"
DLQ_MESSAGE_MAX_BYTES = 4096

Headers = list[tuple[str, bytes]]


def transaction_key(transaction_id: UUID) -> bytes:
    """The record key of everything about one transaction."""
    return str(transaction_id).encode("ascii")


def parse_transaction_key(key: bytes | None) -> UUID | None:
    """The transaction id a key names, or None for a key that is not one."""
    if not key:
        return None
    try:
        return UUID(key.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def dead_letter_headers(
    reason: str, message: str, topic: str, partition: int, offset: int
) -> Headers:
    """The headers of a dead letter: why, and where the original record came from."""
    return [
        (DLQ_REASON, reason.encode()),
        (DLQ_MESSAGE, message.encode("utf-8", "replace")[:DLQ_MESSAGE_MAX_BYTES]),
        (DLQ_SOURCE_TOPIC, topic.encode()),
        (DLQ_SOURCE_PARTITION, str(partition).encode()),
        (DLQ_SOURCE_OFFSET, str(offset).encode()),
    ]
