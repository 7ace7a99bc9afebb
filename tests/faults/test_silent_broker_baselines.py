"""The baseline worker's promises when its Kafka broker goes silent while it publishes: the
broker's JVM is frozen (SIGSTOP: connections stay open, no byte is answered, as in a GC
pause, a frozen VM or a partition), then resumed (SIGCONT). The broker is the test's own.

While frozen, the worker stays up; once resumed it publishes whole recomputes again by
itself, and a reader (read_committed, as the detectors) only ever sees whole sets. SIGTERM
while frozen: it exits 0 within the bound instead of waiting for the broker."""

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from benchmarks.support import settings_from
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import Isolated
from tests.faults.conftest import PrivateKafka, sigterm_and_time
from tests.faults.test_baseline_failover import MERCHANTS, baseline_worker, role, seed_transactions
from tests.faults.test_baseline_sigterm import published
from tests.kafka_helpers import read_all
from tests.processes import Worker, wait_for

pytestmark = pytest.mark.faults

FROZEN_SECONDS = 18.0  # past the producer's request timeout (15 s)
# The recompute in hand given up after service.STOP_GRACE_SECONDS (15 s), then the
# producer's bounded flush (shared.kafka.STOP_FLUSH_SECONDS, 5 s).
EXIT_WITHIN_SECONDS = 15.0 + 5.0 + 5.0


async def leading_worker(
    isolated: Isolated, kafka: PrivateKafka, db: Any, log: Path
) -> tuple[Worker, str]:
    seed_transactions(db)  # 1,510 scopes
    env = isolated.worker_env("baseline") | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "RECOMPUTE_INTERVAL_SECONDS": "0.1",
    }
    await ensure_topics(kafka.bootstrap, project_topics(settings_from(CommonSettings, env)))
    worker, health = baseline_worker(env, log)
    wait_for(lambda: role(health) == "leader", 60, "the worker to lead")
    wait_for(lambda: published(log) >= 2, 60, "a couple of recomputes")
    return worker, health


async def whole_sets(bootstrap: str, topic: str) -> dict[str, int]:
    """Per recompute (its computed_at), how many baselines a read_committed reader sees."""
    sets: dict[str, set[str]] = defaultdict(set)
    for record in await read_all(bootstrap, topic, timeout=60):
        value = json.loads(record.value)
        sets[value["computed_at"]].add(value["id"])
    return {computed_at: len(ids) for computed_at, ids in sets.items()}


async def test_a_frozen_broker_is_waited_out_and_only_whole_sets_are_seen(
    isolated: Isolated, private_kafka: PrivateKafka, db: Any, tmp_path: Path
) -> None:
    log = tmp_path / "baselines.log"
    worker, health = await leading_worker(isolated, private_kafka, db, log)
    try:
        with private_kafka.frozen():
            before = published(log)
            await asyncio.sleep(FROZEN_SECONDS)
            worker.assert_running()
            assert role(health) == "leader"
        resumed = time.monotonic()
        wait_for(lambda: published(log) >= before + 2, 90, "recomputes to be published again")
        recovery = time.monotonic() - resumed
        worker.assert_running()
    finally:
        worker.stop()
    sets = await whole_sets(private_kafka.bootstrap, isolated.topic("baselines"))
    print(f"\nrecomputes seen {len(sets)}, publishing again {recovery:.1f}s after the resume")
    assert set(sets.values()) == {10 + MERCHANTS}, "a half-published recompute was seen"


async def test_sigterm_while_the_broker_is_frozen_exits_within_the_bound(
    isolated: Isolated, private_kafka: PrivateKafka, db: Any, tmp_path: Path
) -> None:
    log = tmp_path / "baselines.log"
    worker, _ = await leading_worker(isolated, private_kafka, db, log)
    try:
        with private_kafka.frozen():
            await asyncio.sleep(2)  # a recompute publishing into the silence
            exit_code, stopped_in = await sigterm_and_time(worker.process)
    finally:
        worker.stop()
    print(f"\nSIGTERM with the broker frozen: exit {exit_code} after {stopped_in:.1f}s")
    assert exit_code == 0, worker.log_tail()
    assert stopped_in < EXIT_WITHIN_SECONDS, worker.log_tail()
    sets = await whole_sets(private_kafka.bootstrap, isolated.topic("baselines"))
    assert set(sets.values()) == {10 + MERCHANTS}, "a half-published recompute was seen"
