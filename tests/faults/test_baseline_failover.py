"""The leading baseline worker SIGKILLed mid-recompute: the standby takes over, and
detectors (read_committed) only ever see whole recomputes, never a half-published set."""

import asyncio
import json
import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Isolated
from tests.kafka_helpers import read_all
from tests.processes import Worker, free_port, get_json, wait_for

pytestmark = pytest.mark.faults
MERCHANTS = 1500  # enough scopes that a recompute takes a while to publish


def seed_transactions(db: Any) -> None:
    db.execute(
        "INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,"
        " anomaly, scored_at)"
        " SELECT gen_random_uuid(), 10 + (g %% 90), 'USD', 'category-' || (g %% 10),"
        " 'merchant-' || (g %% %s), now() - (g %% 20) * interval '1 day', false, now()"
        " FROM generate_series(1, 30000) AS g",
        (MERCHANTS,),
    )


def baseline_worker(env: dict[str, str], log: Path) -> tuple[Worker, str]:
    port = free_port()
    worker = Worker("baseline_worker", env | {"METRICS_PORT": str(port)}, log)
    return worker, f"http://127.0.0.1:{port}/health"


def role(health: str) -> str:
    status, body = get_json(health)
    return str(body["role"]) if status == 200 else "down"


async def test_a_killed_leader_is_replaced_and_no_half_set_is_seen(
    isolated: Isolated, db: Any, tmp_path: Path
) -> None:
    seed_transactions(db)
    env = isolated.worker_env("baseline") | {
        "RECOMPUTE_INTERVAL_SECONDS": "0.1",
        "STANDBY_POLL_SECONDS": "0.5",
    }
    first = baseline_worker(env, tmp_path / "worker-a.log")
    second = baseline_worker(env, tmp_path / "worker-b.log")
    try:
        # Whichever takes the lock first leads; the other stands by.
        wait_for(lambda: "leader" in (role(first[1]), role(second[1])), 60, "a leader")
        (leader, _), (standby, standby_health) = (
            (first, second) if role(first[1]) == "leader" else (second, first)
        )
        standby.wait_healthy(standby_health)
        assert role(standby_health) == "standby"
        await asyncio.sleep(random.Random(3).uniform(2.0, 4.0))  # several recomputes in
        leader.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: role(standby_health) == "leader", 30, "the standby to take over")
        takeover = time.monotonic() - killed
        await asyncio.sleep(2)  # the new leader publishes a few sets
    finally:
        first[0].stop()
        second[0].stop()

    records = await read_all(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("baselines"), timeout=60
    )
    sets: dict[str, set[str]] = defaultdict(set)
    for record in records:
        value = json.loads(record.value)
        sets[value["computed_at"]].add(record.key.decode())
    sizes = {len(scopes) for scopes in sets.values()}
    print(
        f"\n| recomputes seen | scopes each | takeover |\n| {len(sets)} | {sorted(sizes)} "
        f"| {takeover:.1f}s |"
    )
    assert len(sets) >= 2
    assert sizes == {10 + MERCHANTS}  # every committed recompute is whole
