"""Helpers that tests and benchmarks share and production never calls.

They live here, not in the production packages (which ship in the image) nor in tests/,
because benchmarks must not import tests while tests may import benchmarks.
"""

import signal
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from pydantic_settings import BaseSettings

from detector_worker.held_baseline import HeldBaseline, ScopeKey
from schemas import Baseline

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def settings_from(cls: type[SettingsT], env: Mapping[str, str], **overrides: Any) -> SettingsT:
    """Settings from an explicit mapping of variables; no `.env` file."""
    values: dict[str, Any] = {key.lower(): value for key, value in env.items()}
    return cls(_env_file=None, **(values | overrides))


async def delete_topics(bootstrap_servers: str, topics: Iterable[str]) -> None:
    """Delete topics (those that do not exist are skipped): short-lived test and benchmark
    topics would otherwise pile up on the broker and slow its start and its metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.delete_topics(list(topics))
    finally:
        await admin.close()


def index(baselines: Iterable[Baseline]) -> dict[ScopeKey, HeldBaseline]:
    """Held rows by scope key, as the scorer reads them from the detector's table."""
    rows = (HeldBaseline.of(baseline) for baseline in baselines)
    return {row.key: row for row in rows}


def stop_process(process: "subprocess.Popen[bytes]", timeout: float) -> int:
    """SIGTERM, as a supervisor stops a worker; SIGKILL if it is still there after `timeout`
    seconds. Its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
