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
# On a dead letter whose value was cut short to fit: the original value's length in bytes.
DLQ_TRUNCATED = "x-value-truncated"
# A dead letter is written whole up to this size (key, value and headers), else shortened:
# the original alone may be just under Kafka's limits (1 MiB for a producer request and a
# broker message by default), and the headers would push its copy over them.
DLQ_RECORD_MAX_BYTES = 1_000_000

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


def fit_dead_letter(
    key: bytes | None, value: bytes | None, headers: Headers, max_bytes: int
) -> tuple[bytes | None, Headers]:
    """The value and headers of a dead letter of at most about `max_bytes`: the value whole
    when it fits, else its start and a DLQ_TRUNCATED header with its original length."""
    size = len(key or b"") + sum(len(name) + len(data) for name, data in headers)
    if not value or size + len(value) <= max_bytes:
        return value, headers
    marked = [*headers, (DLQ_TRUNCATED, str(len(value)).encode())]
    room = max(0, max_bytes - size - len(DLQ_TRUNCATED) - 20)
    return value[:room], marked
