"""PostgreSQL stopped for several seconds under load: the detector retries with backoff,
pauses consumption instead of skipping, and catches up; nothing lost, nothing doubled.

The outage is real: the test runs its own PostgreSQL cluster (ops/postgres.sh with a private
state dir and port) so it can stop and restart it without touching the shared one.
"""

import asyncio
import time
import urllib.request
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from benchmarks.support import settings_from
from benchmarks.throughput import produce
from shared.kafka import ensure_topics, project_topics
from shared.migrations import apply_migrations
from shared.settings import CommonSettings
from tests.conftest import Isolated
from tests.faults.conftest import PrivatePostgres
from tests.faults.test_detector_crashes import COUNT, check_nothing_lost_or_doubled, persisted
from tests.processes import free_port, running, wait_for

pytestmark = pytest.mark.faults


def retries(metrics_url: str) -> float:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()  # noqa: S310
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('detector_retries_total{stage="persist"}')
    )


async def test_a_database_outage_pauses_and_catches_up(
    isolated: Isolated, private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url, port = private_postgres.url(), free_port()
    env = isolated.env | {
        "DATABASE_URL": url,
        "CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}",
        "METRICS_PORT": str(port),
    }
    apply_migrations(url, isolated.schema)
    settings = settings_from(CommonSettings, env)
    await ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], project_topics(settings))
    await produce(env, COUNT)

    def count() -> int:
        with psycopg.connect(url, options=f"-c search_path={isolated.schema}") as conn:
            return persisted(conn)

    with running("detector_worker", env, tmp_path / "detector.log") as detector:
        detector.wait_healthy(f"http://127.0.0.1:{port}/health")
        wait_for(lambda: count() > 1000, 120, "work to start")
        private_postgres.run("stop")
        await asyncio.sleep(6)  # the outage
        detector.assert_running()  # waiting the outage out, not crashed
        private_postgres.run("start")
        restarted = time.monotonic()
        wait_for(lambda: count() >= COUNT, 240, "the detector to catch up")
        recovery = time.monotonic() - restarted
        assert retries(f"http://127.0.0.1:{port}/metrics") > 0
    with psycopg.connect(url, autocommit=True, options=f"-c search_path={isolated.schema}") as db:
        await check_nothing_lost_or_doubled(isolated, db, recovery)
