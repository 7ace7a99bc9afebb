"""The baseline worker recomputes as soon as a burst of rows is a sizeable share of its
window, not only every RECOMPUTE_INTERVAL_SECONDS (baseline_worker/cadence.py)."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from baseline_worker.service import BaselineService
from baseline_worker.settings import BaselineSettings
from tests.conftest import Isolated

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def insert_rows(db: Any, count: int) -> None:
    for i in range(count):
        db.execute(
            "INSERT INTO transactions (id, amount, currency, category, merchant,"
            " transaction_date, anomaly, scored_at) VALUES (gen_random_uuid(), %s, 'USD',"
            " 'food', 'Cafe', %s, false, now())",
            (10 + i, NOW - timedelta(days=3, minutes=i)),
        )


async def until(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_burst_of_rows_brings_the_next_recompute_forward(
    isolated: Isolated, db: Any
) -> None:
    settings = isolated.settings(
        BaselineSettings,
        recompute_interval_seconds=3600,  # the interval alone would never come in this test
        recompute_growth_share=0.5,
        recompute_min_gap_seconds=0.2,
        recompute_poll_seconds=0.1,
        metrics_port=0,
    )
    registry = CollectorRegistry()
    service = BaselineService(settings, registry, clock=lambda: NOW)
    insert_rows(db, 10)
    running = asyncio.create_task(service.run())
    try:

        def published() -> float:
            return registry.get_sample_value("baseline_scopes", {"kind": "category"}) or 0.0

        def growth() -> float:
            labels = {"reason": "growth"}
            return registry.get_sample_value("baseline_recompute_triggers_total", labels) or 0.0

        await until(lambda: published() == 1, 60)
        await asyncio.sleep(1.0)
        assert growth() == 0  # nothing stored since: no early recompute
        insert_rows(db, 6)  # over half the 10 rows in the window
        # PostgreSQL flushes its insert counters within a second or so (up to 10 s idle).
        await until(lambda: growth() >= 1, 20)
    finally:
        service.stopping.set()
        await asyncio.wait_for(running, 30)
    window = registry.get_sample_value("baseline_recompute_triggers_total", {"reason": "interval"})
    assert not window
