"""The Kafka broker stopped and restarted while the detector works through a backlog: the
detector stays up, waits the outage out, reconnects by itself and finishes the backlog;
nothing lost, nothing doubled, every alert published. The broker is the test's own
(ops/kafka.sh with a private state dir and ports), so it can be stopped.

This is the test that keeps uvloop out of the workers: with it, aiokafka's connections
raise RuntimeError instead of OSError on a closed socket and a client can stay broken after
the broker comes back (aio-libs/aiokafka#1038; the gateway's broker-outage test caught it).
"""

import asyncio
import time
from typing import Any
from uuid import uuid4

import pytest

from benchmarks.support import settings_from
from benchmarks.throughput import produce
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import Isolated
from tests.faults.conftest import PrivateKafka
from tests.faults.test_detector_crashes import (
    COUNT,
    check_nothing_lost_or_doubled,
    persisted,
    start_detector,
)
from tests.processes import wait_for

pytestmark = pytest.mark.faults


async def test_a_broker_outage_is_waited_out_and_the_backlog_finished(
    isolated: Isolated, private_kafka: PrivateKafka, db: Any, tmp_path: Any
) -> None:
    env = isolated.worker_env("detector") | {
        "KAFKA_BOOTSTRAP_SERVERS": private_kafka.bootstrap,
        "CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}",
    }
    await ensure_topics(private_kafka.bootstrap, project_topics(settings_from(CommonSettings, env)))
    await produce(env, COUNT)
    detector, health = start_detector(env, tmp_path / "detector.log")
    try:
        detector.wait_healthy(health)
        wait_for(lambda: persisted(db) > 1000, 120, "work to start")
        await asyncio.to_thread(private_kafka.run, "stop")
        await asyncio.sleep(8)  # the outage
        detector.assert_running()  # waiting the outage out, not crashed
        await asyncio.to_thread(private_kafka.run, "start")
        restarted = time.monotonic()
        wait_for(lambda: persisted(db) >= COUNT, 240, "the detector to finish the backlog")
        recovery = time.monotonic() - restarted
        detector.assert_running()
    finally:
        detector.stop()
    await check_nothing_lost_or_doubled(isolated, db, recovery, private_kafka.bootstrap)
