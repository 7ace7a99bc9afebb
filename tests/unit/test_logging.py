"""Structured logs: one JSON object per line, at LOG_LEVEL, with readable transaction ids."""

import json
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from shared.logging import configure_logging, level_name
from shared.settings import CommonSettings

TXN = UUID("5f0c7a4e-8d1b-4c55-9a3e-2b7f1e9c0d42")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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
