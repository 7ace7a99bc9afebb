"""Nothing lost, nothing doubled when detectors die: SIGKILL at random moments, and a
consumer group losing one of two members. Real processes, real broker and database."""

import asyncio
import random
import signal
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from benchmarks.throughput import produce
from tests.conftest import Isolated
from tests.kafka_helpers import read_all
from tests.processes import Worker, free_port, wait_for

pytestmark = pytest.mark.faults
COUNT = 20_000


def start_detector(env: dict[str, str], log: Path) -> tuple[Worker, str]:
    port = free_port()
    worker = Worker("detector_worker", env | {"METRICS_PORT": str(port)}, log)
    return worker, f"http://127.0.0.1:{port}/health"


def persisted(db: Any) -> int:
    return int(db.execute("SELECT count(*) FROM transactions").fetchone()[0])


async def check_nothing_lost_or_doubled(
    isolated: Isolated, db: Any, recovery: float, bootstrap: str | None = None
) -> None:
    bootstrap = bootstrap or isolated.env["KAFKA_BOOTSTRAP_SERVERS"]
    rows, distinct = db.execute("SELECT count(*), count(DISTINCT id) FROM transactions").fetchone()
    anomalies = db.execute("SELECT count(*) FROM transactions WHERE anomaly").fetchone()[0]
    alert_rows = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
    alert_records = await read_all(bootstrap, isolated.topic("alerts"))
    dead = await read_all(bootstrap, isolated.topic("dlq"))
    alerted = {r.key.decode() for r in alert_records}
    stored = {str(r[0]) for r in db.execute("SELECT transaction_id FROM alerts").fetchall()}
    print(
        f"\n| sent | acked | persisted | duplicates | alerts (rows/records) | DLQ | recovery |"
        f"\n| {COUNT} | {COUNT} | {rows} | {rows - distinct} | {alert_rows}/{len(alert_records)} "
        f"| {len(dead)} | {recovery:.1f}s |"
    )
    assert rows == distinct == COUNT
    assert alert_rows == anomalies > 0
    assert stored <= alerted  # every alert row was published at least once
    assert dead == []


async def test_sigkilled_detectors_lose_and_double_nothing(
    isolated: Isolated, db: Any, tmp_path: Path
) -> None:
    env = isolated.worker_env("detector") | {"CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}"}
    await produce(env, COUNT)
    rng = random.Random(11)
    kills, restarted_at = 0, time.monotonic()
    while kills < 3:
        worker, health = start_detector(env, tmp_path / f"detector-{kills}.log")
        worker.wait_healthy(health)
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        if persisted(db) >= COUNT:
            worker.stop()
            break
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait()
        kills += 1
        restarted_at = time.monotonic()
    else:
        worker, health = start_detector(env, tmp_path / "detector-final.log")
        worker.wait_healthy(health)
    try:
        wait_for(lambda: persisted(db) >= COUNT, 240, "every transaction to be persisted")
    finally:
        worker.stop()
    await check_nothing_lost_or_doubled(isolated, db, time.monotonic() - restarted_at)


async def test_a_group_survives_losing_a_member(
    isolated: Isolated, db: Any, tmp_path: Path
) -> None:
    env = isolated.worker_env("detector") | {"CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}"}
    await produce(env, COUNT)
    first, first_health = start_detector(env, tmp_path / "detector-a.log")
    second, second_health = start_detector(env, tmp_path / "detector-b.log")
    try:
        first.wait_healthy(first_health)
        second.wait_healthy(second_health)
        wait_for(lambda: persisted(db) > 0, 60, "the group to start work")
        first.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: persisted(db) >= COUNT, 240, "the survivor to finish")
        recovery = time.monotonic() - killed_at
    finally:
        first.stop()
        second.stop()
    await check_nothing_lost_or_doubled(isolated, db, recovery)
