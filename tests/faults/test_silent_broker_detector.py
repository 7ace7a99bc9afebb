"""The detector's promises when its Kafka broker goes silent mid-stream: the broker's JVM is
frozen (SIGSTOP: connections stay open, no byte is answered, as in a GC pause, a frozen VM or
a partition), then resumed (SIGCONT). The broker is the test's own (ops/kafka.sh).

Frozen for longer than the group's session timeout (the coordinator then evicts the member
on resuming, a rebalance) and for shorter: the detector resumes and finishes the backlog,
nothing lost, nothing doubled, every alert published. SIGTERM while the broker is frozen:
the detector exits within the shutdown bound, its batch not committed, and the next detector
stores what is left once."""

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from benchmarks.support import settings_from
from benchmarks.throughput import produce
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import Isolated
from tests.faults.conftest import PrivateKafka, sigterm_and_time
from tests.faults.test_detector_crashes import (
    COUNT,
    check_nothing_lost_or_doubled,
    persisted,
    start_detector,
)
from tests.processes import Worker, wait_for

pytestmark = pytest.mark.faults

SESSION_TIMEOUT_SECONDS = 10
# SIGTERM to exit with the broker frozen. Idle: the consumer's close is given up after
# delivery.CONSUMER_STOP_SECONDS (it waited for the broker to answer again, for good). With a
# batch in hand: its publish fails at the producer's request timeout (15 s), then the stop
# ends the retrying at once (as test_detector_sigterm_while_retrying); or aiokafka retries
# the produce, Faust's stop waits on its offset commit, and the stop is overdue at
# app.STOP_DEADLINE_SECONDS (15 s): the process leaves (it waited for the broker, once).
IDLE_SHUTDOWN_BOUND = 10.0
BUSY_SHUTDOWN_BOUND = 15.0 + 5.0


async def detector_on(
    isolated: Isolated, kafka: PrivateKafka, db: Any, tmp_path: Path, name: str
) -> tuple[dict[str, str], Worker]:
    """A backlog of COUNT transactions on the private broker and a detector working on it."""
    env = isolated.worker_env("detector") | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "CONSUMER_GROUP": f"silent-{uuid4().hex[:8]}",
        "SESSION_TIMEOUT_SECONDS": str(SESSION_TIMEOUT_SECONDS),
    }
    await ensure_topics(kafka.bootstrap, project_topics(settings_from(CommonSettings, env)))
    await produce(env, COUNT)
    detector, health = start_detector(env, tmp_path / f"{name}.log")
    detector.wait_healthy(health)
    wait_for(lambda: persisted(db) > 1000, 120, "work to start")
    return env, detector


@pytest.mark.parametrize("frozen_seconds", [SESSION_TIMEOUT_SECONDS + 5, 4])
async def test_a_frozen_broker_is_waited_out_and_the_backlog_finished(
    isolated: Isolated, private_kafka: PrivateKafka, db: Any, tmp_path: Path, frozen_seconds: int
) -> None:
    _, detector = await detector_on(isolated, private_kafka, db, tmp_path, "detector")
    try:
        with private_kafka.frozen():
            frozen_at = persisted(db)
            await asyncio.sleep(frozen_seconds)
            detector.assert_running()  # waiting the silence out, not crashed
        resumed = time.monotonic()
        wait_for(lambda: persisted(db) >= COUNT, 180, "the detector to finish the backlog")
        recovery = time.monotonic() - resumed
        detector.assert_running()
    finally:
        detector.stop()
    print(f"\nfrozen {frozen_seconds}s at {frozen_at} rows; finished {recovery:.1f}s after")
    await check_nothing_lost_or_doubled(isolated, db, recovery, private_kafka.bootstrap)


@pytest.mark.parametrize("busy", [True, False], ids=["batch in hand", "idle"])
async def test_sigterm_while_the_broker_is_frozen_exits_within_the_bound(
    isolated: Isolated, private_kafka: PrivateKafka, db: Any, tmp_path: Path, busy: bool
) -> None:
    env, detector = await detector_on(isolated, private_kafka, db, tmp_path, "detector-1")
    if not busy:
        wait_for(lambda: persisted(db) >= COUNT, 180, "the backlog to be done")
        await asyncio.sleep(2)  # its offsets committed
    try:
        with private_kafka.frozen():
            await asyncio.sleep(1)  # the batch in hand (if any) waits on the broker
            exit_code, stopped_in = await sigterm_and_time(detector.process)
    finally:
        detector.stop()
    print(f"\nSIGTERM with the broker frozen: exit {exit_code} after {stopped_in:.1f}s")
    assert exit_code == 0, detector.log_tail()
    assert stopped_in < (BUSY_SHUTDOWN_BOUND if busy else IDLE_SHUTDOWN_BOUND), detector.log_tail()

    again, health = start_detector(env, tmp_path / "detector-2.log")
    try:
        again.wait_healthy(health)
        resumed = time.monotonic()
        wait_for(lambda: persisted(db) >= COUNT, 180, "the next detector to finish the backlog")
    finally:
        again.stop()
    await check_nothing_lost_or_doubled(
        isolated, db, time.monotonic() - resumed, private_kafka.bootstrap
    )
