"""Structured JSON logs on stderr, one object per line.

Fields given with `extra=` become keys of the object. Where a log line concerns one
transaction, pass its id as `transaction_id` (a UUID, a str or the raw Kafka key): it is
written as the id's text, so that `grep <id>` finds every line about it.
"""

import logging
import sys
from uuid import UUID

from pythonjsonlogger.json import JsonFormatter

_LEVELS = {"warn": "WARNING"}


class TransactionIdText(logging.Filter):
    """Write `transaction_id` as text: the JSON encoder would base64 a raw key's bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        value = getattr(record, "transaction_id", None)
        if isinstance(value, bytes | bytearray):
            record.transaction_id = bytes(value).decode("utf-8", "replace")
        elif isinstance(value, UUID):
            record.transaction_id = str(value)
        return True


def level_name(level: str) -> str:
    """LOG_LEVEL's value as the logging module names it (`warn` is an alias of `warning`)."""
    return _LEVELS.get(level.lower(), level.upper())


def configure_logging(level: str, service: str) -> None:
    """Route every logger (ours, aiokafka's, Faust's) through one JSON handler at LOG_LEVEL."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(TransactionIdText())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name(level))
    # aiokafka logs every reconnect attempt at INFO/ERROR; keep it to warnings.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
