"""Structured JSON logs on stderr, one object per line, timed in ISO 8601 UTC with a `Z`.

Fields given with `extra=` become keys of the object. Where a log line concerns one
transaction, pass its id as `transaction_id` (a UUID, a str or the raw Kafka key): it is
written as the id's text, so that `grep <id>` finds every line about it.

A line written once per request (the gateway's access log) takes a fast path,
`JsonLinesHandler.write_fields`: the same keys, encoded directly with the stdlib's C JSON
encoder, without a LogRecord, `findCaller` or python-json-logger, and written once per
event-loop turn with the other lines of that turn (~80 µs a line on a loaded machine through
the formatter; docs/performance.md).
"""

import asyncio
import logging
import math
import sys
import time
from datetime import UTC, datetime
from typing import TextIO
from uuid import UUID

from aiokafka.errors import GroupCoordinatorNotAvailableError
from pythonjsonlogger.json import JsonFormatter

from shared.json_text import json_text

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


def utc_text(created: float) -> str:
    """2026-12-01T13:17:23.402Z whatever the host's time zone: lines from every worker and host
    sort and compare as text."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _SecondText:
    """utc_text at a fifth of its cost for a time in the second of the previous call (as the
    lines of a busy process are): the second's text is kept, the milliseconds are added. The
    microseconds are rounded as `datetime.fromtimestamp` rounds them (half to even, carrying
    into the next second), so the text is utc_text's (tests/unit/test_logging.py)."""

    def __init__(self) -> None:
        # (second, its text) swapped in one assignment: a thread never pairs one with the
        # other's.
        self._kept: tuple[float, str] = (math.nan, "")

    def __call__(self, created: float) -> str:
        if created < 0:  # before 1970 (a wrong clock): modf's parts would be negative
            return utc_text(created)
        fraction, second = math.modf(created)
        micros = round(fraction * 1e6)
        if micros >= 1_000_000:
            micros -= 1_000_000
            second += 1.0
        kept_second, head = self._kept
        if second != kept_second:
            head = utc_text(second)[:-5]  # "2026-12-01T13:17:23"
            self._kept = (second, head)
        return f"{head}.{micros // 1000:03d}Z"


# The keys write_fields puts before the fields.
_OWN_KEYS = frozenset({"time", "level", "logger", "message", "service"})


class UtcJsonFormatter(JsonFormatter):
    """`time` in UTC with a `Z` (utc_text)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_text(record.created)


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """The one JSON handler, which also takes lines already encoded (`write_fields`): those
    wait in a buffer until the end of the event loop's turn, and are written before any line
    logged after them and at every flush, the one at exit included (logging.shutdown)."""

    def __init__(self, stream: TextIO, service: str) -> None:
        super().__init__(stream)
        self.service = service
        self._pending: list[str] = []
        self._time_text = _SecondText()
        # The encoded level, logger, message and service of the lines written directly.
        self._heads: dict[tuple[str, str, str], str] = {}

    def write_fields(
        self, level: str, logger: str, message: str, fields: dict[str, object]
    ) -> None:
        """A line with the keys the formatter gives a record with these `extra=` fields."""
        text = self._line(self._time_text(time.time()), level, logger, message, fields)
        self.acquire()  # another thread's line may be flushing the buffer
        try:
            self._pending.append(text)
            first = len(self._pending) == 1
        finally:
            self.release()
        if first:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: write it now
                self.flush()

    def _line(
        self, moment: str, level: str, logger: str, message: str, fields: dict[str, object]
    ) -> str:
        """json.dumps of {time, level, logger, message, service, **fields}: the keys between
        the time and the fields encoded once per level, logger and message."""
        if not fields or not _OWN_KEYS.isdisjoint(fields):  # nothing to add, or a key replaced
            own = {"level": level, "logger": logger, "message": message, "service": self.service}
            return json_text({"time": moment} | own | fields)
        head = self._heads.get((level, logger, message))
        if head is None:
            own = {"level": level, "logger": logger, "message": message, "service": self.service}
            head = self._heads[level, logger, message] = json_text(own)[1:-1]
        # The time's text is digits and -:.TZ, nothing JSON escapes.
        return f'{{"time": "{moment}", {head}, {json_text(fields)[1:]}'

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.flush()  # lines in the order they were logged
        super().emit(record)

    def flush(self) -> None:
        self.acquire()
        try:
            if self._pending:
                lines, self._pending = self._pending, []
                self.stream.write("\n".join(lines) + "\n")
            super().flush()
        finally:
            self.release()


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


def json_lines() -> JsonLinesHandler | None:
    """The handler configure_logging installed, or None when logging was set up otherwise."""
    handlers = logging.getLogger().handlers
    return handlers[0] if len(handlers) == 1 and isinstance(handlers[0], JsonLinesHandler) else None


def configure_logging(level: str, service: str) -> None:
    """Route every logger (ours, aiokafka's, Faust's) through one JSON handler at LOG_LEVEL."""
    handler = JsonLinesHandler(sys.stderr, service)
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
