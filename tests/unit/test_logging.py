"""Structured logs: one JSON object per line, at LOG_LEVEL, with readable transaction ids."""

import asyncio
import io
import json
import logging
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError, NodeNotReadyError
from hypothesis import given
from hypothesis import strategies as st

from shared.logging import JsonLinesHandler, _SecondText, configure_logging, level_name, utc_text
from shared.settings import CommonSettings

TXN = UUID("5f0c7a4e-8d1b-4c55-9a3e-2b7f1e9c0d42")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root, aiokafka = logging.getLogger(), logging.getLogger("aiokafka")
    handlers, level, aiokafka_level = root.handlers[:], root.level, aiokafka.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    aiokafka.setLevel(aiokafka_level)


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_log_level_drops_what_is_below_it(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", "detector_worker")
    log = logging.getLogger("detector_worker.pipeline")
    log.info("scored")
    logging.getLogger("faust.transport").info("faust chatter")
    log.warning("dead-lettering record", extra={"offset": 17})
    [line] = logged(capsys)
    assert line["level"] == "WARNING"
    assert line["service"] == "detector_worker"
    assert line["logger"] == "detector_worker.pipeline"
    assert line["offset"] == 17


def test_debug_reaches_our_loggers_but_not_aiokafka_reconnect_noise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("debug", "gateway")
    logging.getLogger("ingest_gateway.app").debug("detail")
    logging.getLogger("aiokafka.conn").info("reconnecting")
    assert [line["message"] for line in logged(capsys)] == ["detail"]


@pytest.mark.parametrize("given", [TXN, str(TXN), str(TXN).encode()])
def test_transaction_ids_are_written_as_text(
    given: object, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "detector_worker")
    logging.getLogger("detector_worker").error("failed", extra={"transaction_id": given})
    [line] = logged(capsys)
    assert line["transaction_id"] == str(TXN)


@pytest.mark.parametrize(
    ("env", "expected"), [("WARN", "WARNING"), ("info", "INFO"), ("Debug", "DEBUG")]
)
def test_log_level_setting_names_a_logging_level(env: str, expected: str) -> None:
    settings = CommonSettings(_env_file=None, database_url="postgresql://u:p@db/x", log_level=env)
    assert level_name(settings.log_level) == expected
    assert isinstance(logging.getLevelName(expected), int)


def test_time_is_iso_8601_utc_with_a_z_whatever_the_local_zone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        configure_logging("info", "baseline_worker")
        before = datetime.now(UTC)
        logging.getLogger("baseline_worker").info("recomputed")
        [line] = logged(capsys)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert line["time"].endswith("Z")
    written = datetime.fromisoformat(line["time"])
    assert written.utcoffset() is not None and written.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((written - before).total_seconds()) < 5


COORDINATOR_LOG = "aiokafka.consumer.group_coordinator"


def test_coordinator_not_available_at_start_is_not_an_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "detector_worker")
    failed = "Group Coordinator Request failed: %s"
    logging.getLogger(COORDINATOR_LOG).error(failed, GroupCoordinatorNotAvailableError())
    assert logged(capsys) == []
    configure_logging("debug", "detector_worker")
    logging.getLogger("aiokafka").setLevel(logging.DEBUG)
    logging.getLogger(COORDINATOR_LOG).error(failed, GroupCoordinatorNotAvailableError())
    [line] = logged(capsys)
    assert line["level"] == "INFO"


def test_other_aiokafka_errors_stay_errors(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "detector_worker")
    logging.getLogger(COORDINATOR_LOG).error(
        "Group Coordinator Request failed: %s", NodeNotReadyError()
    )
    [line] = logged(capsys)
    assert line["level"] == "ERROR"


FIELDS: dict[str, object] = {
    "method": "POST",
    "route": "/transactions/{id}",
    "status": 201,
    "duration_ms": 12.345,
    "caller": 'caf\u00e9 "east"',
}


@pytest.mark.parametrize("caller", ['caf\u00e9 "east"', None])
def test_a_line_written_directly_is_the_formatters_line_for_the_same_record(
    caller: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    handler = JsonLinesHandler(stream, "ingest_gateway")
    configure_logging("info", "ingest_gateway")
    formatter = logging.getLogger().handlers[0].formatter
    assert formatter is not None
    moment = 1_764_595_043.402_7
    monkeypatch.setattr(time, "time", lambda: moment)
    fields = FIELDS | {"caller": caller}
    handler.write_fields("INFO", "ingest_gateway.access", "request", fields)
    record = logging.LogRecord("ingest_gateway.access", logging.INFO, "", 0, "request", (), None)
    record.__dict__.update(fields)
    record.created = moment
    assert stream.getvalue() == formatter.format(record) + "\n"


async def test_direct_lines_wait_for_the_end_of_the_loop_turn_and_keep_their_order() -> None:
    stream = io.StringIO()
    handler = JsonLinesHandler(stream, "ingest_gateway")
    handler.setFormatter(logging.Formatter("%(message)s"))
    for status in (200, 201):
        handler.write_fields(
            "INFO", "ingest_gateway.access", "request", FIELDS | {"status": status}
        )
    assert stream.getvalue() == ""  # one write for the turn's lines, at its end
    await asyncio.sleep(0)
    assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == [200, 201]
    handler.write_fields("INFO", "ingest_gateway.access", "request", FIELDS | {"status": 404})
    handler.handle(logging.LogRecord("x", logging.WARNING, "", 0, "logged after", (), None))
    third, fourth = stream.getvalue().splitlines()[2:]
    assert (json.loads(third)["status"], fourth) == (404, "logged after")


async def test_lines_waiting_for_the_loop_are_written_at_exit() -> None:
    stream = io.StringIO()
    handler = JsonLinesHandler(stream, "ingest_gateway")
    handler.write_fields("INFO", "ingest_gateway.access", "request", FIELDS)
    # What the logging module runs at interpreter exit, before the loop's next turn.
    logging.shutdown([weakref.ref(handler)])
    assert json.loads(stream.getvalue())["route"] == "/transactions/{id}"


# Instants a log line may carry: any in the years Python holds, and the edges where rounding
# to microseconds carries into the next second (x.9999995) or sits between two milliseconds.
_EDGES = st.integers(0, 4_102_444_799).flatmap(
    lambda second: st.sampled_from([0.9999995, 0.9999994, 0.0005, 0.0004999, 0.9995]).map(
        lambda fraction: second + fraction
    )
)


@given(st.lists(st.floats(-62_135_596_800, 253_402_300_799) | _EDGES, min_size=1))
def test_the_kept_seconds_text_is_utc_texts_for_any_instants_in_any_order(
    instants: list[float],
) -> None:
    time_text = _SecondText()
    assert [time_text(moment) for moment in instants] == [utc_text(m) for m in instants]


_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | st.text()


@given(
    st.dictionaries(st.sampled_from(["level", "time", "status", "caller"]) | st.text(), _VALUES),
    st.sampled_from(["INFO", "WARNING"]),
)
def test_a_direct_line_is_json_dumps_of_the_records_keys_and_its_fields(
    fields: dict[str, object], level: str
) -> None:
    handler = JsonLinesHandler(io.StringIO(), "ingest_gateway")
    moment = "2026-12-01T23:12:45.586Z"
    expected = {
        "time": moment,
        "level": level,
        "logger": "ingest_gateway.access",
        "message": "request",
        "service": "ingest_gateway",
    }
    for _ in range(2):  # the first line encodes the head, the second reuses it
        line = handler._line(moment, level, "ingest_gateway.access", "request", fields)
        assert line == json.dumps(expected | fields)
