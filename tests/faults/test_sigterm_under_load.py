"""SIGTERM to the detector under load: it drains and exits 0 within a bounded time, and a
restarted one finishes the stream with nothing lost or doubled."""

import signal
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from benchmarks.throughput import produce
from tests.conftest import Isolated
from tests.faults.test_detector_crashes import (
    COUNT,
    check_nothing_lost_or_doubled,
    persisted,
    start_detector,
)
from tests.processes import wait_for

pytestmark = pytest.mark.faults


async def test_sigterm_drains_the_detector(isolated: Isolated, db: Any, tmp_path: Path) -> None:
    env = isolated.worker_env("detector") | {"CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}"}
    await produce(env, COUNT)
    worker, health = start_detector(env, tmp_path / "detector-1.log")
    worker.wait_healthy(health)
    wait_for(lambda: persisted(db) > 2000, 120, "work to start")
    asked = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    exit_code = worker.process.wait(30)
    drained_in = time.monotonic() - asked
    assert exit_code == 0, worker.log_tail()
    assert persisted(db) < COUNT  # it stopped part way, as asked

    again, health = start_detector(env, tmp_path / "detector-2.log")
    again.wait_healthy(health)
    restarted = time.monotonic()
    try:
        wait_for(lambda: persisted(db) >= COUNT, 240, "the restarted detector to finish")
    finally:
        again.stop()
    print(f"\nSIGTERM to exit: {drained_in:.1f}s")
    await check_nothing_lost_or_doubled(isolated, db, time.monotonic() - restarted)
