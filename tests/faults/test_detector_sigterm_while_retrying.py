"""SIGTERM to a detector that is retrying a batch through a database outage (issue 13, F12):
it exits 0 within the shutdown bound instead of waiting the outage out, commits nothing of
that batch, and the next detector stores all of it once the database is back.

The outage is real: the test runs its own PostgreSQL cluster, as test_database_outage does.
"""

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
from tests.faults.test_detector_crashes import persisted, start_detector
from tests.processes import wait_for

pytestmark = pytest.mark.faults
SENT = 300
# SIGTERM to exit, for a detector that is retrying (the retry looks every 0.2 s).
SHUTDOWN_BOUND_SECONDS = 10.0


def retrying(health_url: str) -> bool:
    metrics = health_url.removesuffix("/health") + "/metrics"
    text = urllib.request.urlopen(metrics, timeout=5).read().decode()  # noqa: S310
    return any(
        line.startswith('detector_retries_total{stage="persist"}') and not line.endswith(" 0.0")
        for line in text.splitlines()
    )


async def test_f12_sigterm_while_retrying_exits_within_the_bound(
    isolated: Isolated, private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_postgres.url()
    env = isolated.env | {"DATABASE_URL": url, "CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}"}
    apply_migrations(url, isolated.schema)
    await ensure_topics(
        env["KAFKA_BOOTSTRAP_SERVERS"], project_topics(settings_from(CommonSettings, env))
    )

    def count() -> int:
        with psycopg.connect(url, options=f"-c search_path={isolated.schema}") as conn:
            return persisted(conn)

    detector, health = start_detector(env, tmp_path / "detector-1.log")
    try:
        detector.wait_healthy(health)
        private_postgres.run("stop")
        await produce(env, SENT)
        wait_for(lambda: retrying(health), 60, "the detector to retry its batch")
        asked = time.monotonic()
        detector.process.terminate()
        exit_code = detector.process.wait(SHUTDOWN_BOUND_SECONDS + 20)
        stopped_in = time.monotonic() - asked
    finally:
        detector.stop()
    assert exit_code == 0, detector.log_tail()
    assert stopped_in < SHUTDOWN_BOUND_SECONDS, detector.log_tail()

    private_postgres.run("start")
    assert count() == 0
    again, health = start_detector(env, tmp_path / "detector-2.log")
    try:
        again.wait_healthy(health)
        wait_for(lambda: count() >= SENT, 120, "the next detector to store the batch")
    finally:
        again.stop()
    with psycopg.connect(url, options=f"-c search_path={isolated.schema}") as db:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM transactions").fetchone() == (
            SENT,
            SENT,
        )
