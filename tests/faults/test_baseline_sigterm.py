"""SIGTERM to the leading baseline worker in the middle of a recompute: it finishes the
recompute in hand (recorded, published whole, marked current), then exits 0 within a
bounded time, leaving nothing half done."""

import asyncio
import json
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.conftest import Isolated
from tests.faults.test_baseline_failover import MERCHANTS, baseline_worker, role, seed_transactions
from tests.kafka_helpers import read_all
from tests.processes import wait_for

pytestmark = pytest.mark.faults
EXIT_WITHIN_SECONDS = 30


def published(log: Path) -> int:
    return log.read_text(errors="replace").count('"baselines published"')


def waiting_on(db: Any, table: str) -> bool:
    row = db.execute(
        "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", (table,)
    ).fetchone()
    return bool(row[0])


async def test_sigterm_mid_recompute_finishes_it_and_exits_0(
    isolated: Isolated, db: Any, tmp_path: Path
) -> None:
    seed_transactions(db)  # 1,510 scopes
    env = isolated.worker_env("baseline") | {"RECOMPUTE_INTERVAL_SECONDS": "0.1"}
    log = tmp_path / "baselines.log"
    worker, health = baseline_worker(env, log)
    try:
        wait_for(lambda: role(health) == "leader", 60, "the worker to lead")
        wait_for(lambda: published(log) >= 2, 60, "a couple of recomputes")
        # Hold the next recompute half way: history written, inside its database
        # transaction, waiting to read the scopes last published.
        current = f"{isolated.schema}.baselines_current"
        with db.transaction():
            db.execute(
                sql.SQL("LOCK TABLE {}.baselines_current IN ACCESS EXCLUSIVE MODE").format(
                    sql.Identifier(isolated.schema)
                )
            )
            wait_for(lambda: waiting_on(db, current), 30, "a recompute to reach the lock")
            before = published(log)
            asked = time.monotonic()
            worker.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1)
            assert worker.process.poll() is None, "it dropped the recompute in hand"
            released = time.monotonic()
        exit_code = worker.process.wait(EXIT_WITHIN_SECONDS)
        stopped_in = time.monotonic() - released
    finally:
        worker.stop()
    assert exit_code == 0, worker.log_tail()
    assert published(log) == before + 1  # the held recompute, and no other after it

    records = await read_all(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("baselines"), timeout=60
    )
    sets: dict[str, set[str]] = defaultdict(set)
    for record in records:
        value = json.loads(record.value)
        sets[value["computed_at"]].add(value["id"])
    recorded = db.execute("SELECT count(DISTINCT computed_at) FROM baseline_history").fetchone()
    print(
        f"\n| recomputes | SIGTERM to release | release to exit |\n"
        f"| {len(sets)} | {released - asked:.1f}s | {stopped_in:.1f}s |"
    )
    # Every recompute begun was finished: recorded, published whole, logged...
    assert {len(ids) for ids in sets.values()} == {10 + MERCHANTS}
    assert recorded == (len(sets),)
    assert published(log) == len(sets)
    # ...and the last one is what the database marks as current.
    marked = db.execute("SELECT baseline_id::text FROM baselines_current").fetchall()
    assert {baseline_id for (baseline_id,) in marked} == sets[max(sets)]
