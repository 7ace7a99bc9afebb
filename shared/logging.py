"""Structured JSON logs on stderr, one object per line, timed in ISO 8601 UTC with a `Z`.

Fields given with `extra=` become keys of the object. Where a log line concerns one
transaction, pass its id as `transaction_id` (a UUID, a str or the raw Kafka key): it is
written as the id's text, so that `grep <id>` finds every line about it.
"""

import logging
import sys
from datetime import UTC, datetime
from uuid import UUID

from aiokafka.errors import GroupCoordinatorNotAvailableError
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


class UtcJsonFormatter(JsonFormatter):
    """`time` as 2026-12-01T13:17:23.402Z whatever the host's time zone: lines from every
    worker and host sort and compare as text."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BenignCoordinatorLookup(logging.Filter):
    """aiokafka logs "Group Coordinator Request failed" at ERROR when the group coordinator
    is not available yet, as at every start against a fresh broker, and then retries. That
    is INFO: it reaches the log only when aiokafka's INFO does."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._is_benign(record):
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)

    @staticmethod
    def _is_benign(record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return (
            record.name.startswith("aiokafka.")
            and record.levelno == logging.ERROR
            and any(isinstance(arg, GroupCoordinatorNotAvailableError) for arg in args)
        )


def level_name(level: str) -> str:
    """LOG_LEVEL's value as the logging module names it (`warn` is an alias of `warning`)."""
    return _LEVELS.get(level.lower(), level.upper())


def configure_logging(level: str, service: str) -> None:
    """Route every logger (ours, aiokafka's, Faust's) through one JSON handler at LOG_LEVEL."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        UtcJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(TransactionIdText())
    handler.addFilter(BenignCoordinatorLookup())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name(level))
    # aiokafka logs every reconnect attempt at INFO/ERROR; keep it to warnings.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
