"""PostgreSQL going silent while the baseline worker recomputes: the recompute fails at the
bound (counted, nothing published) instead of waiting forever, and the next one succeeds
once the database answers again; a leader whose lock session goes silent stands by, and a
silent insert counter reads as unknown.

The silence is test_silent_database's relay; Kafka is the shared broker."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from baseline_worker.cadence import inserted_rows
from baseline_worker.leadership import LeaderLock, LeadershipLost, leader_lock_key
from baseline_worker.service import BaselineService
from baseline_worker.settings import BaselineSettings
from shared.db import open_pool
from shared.kafka import RenewableProducer, make_producer
from tests.conftest import Isolated
from tests.faults.silent_relay import Relayed, relay, relayed
from tests.faults.test_silent_database import SilenceableRelay
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.faults
__all__ = ["relay", "relayed"]  # fixtures, used by name
WORKER = "baseline"  # whose login the relay reaches

TIMEOUT = 1.0
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def settings(isolated: Isolated, relayed: Relayed) -> BaselineSettings:
    url = relayed[1]
    return isolated.settings(BaselineSettings, database_url=url, baseline_window_days=30)


@pytest.fixture
def service(settings: BaselineSettings) -> BaselineService:
    return BaselineService(
        settings, CollectorRegistry(), clock=lambda: NOW, database_timeout_seconds=TIMEOUT
    )


@pytest.fixture
async def pool(settings: BaselineSettings) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(
        settings.database_url, settings.database_schema, connection_timeout=TIMEOUT
    )
    yield opened
    await opened.close()


def insert_food(db: Any) -> None:
    db.execute(
        "INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,"
        " anomaly, scored_at) VALUES (gen_random_uuid(), 10, 'USD', 'food', 'Cafe', %s,"
        " false, %s)",
        (NOW - timedelta(days=1), NOW),
    )


async def test_a_recompute_on_a_silent_database_fails_in_time_then_recovers(
    service: BaselineService,
    pool: AsyncConnectionPool,
    relay: SilenceableRelay,
    settings: BaselineSettings,
    db: Any,
) -> None:
    insert_food(db)
    producers = RenewableProducer(
        lambda: make_producer(
            settings.kafka_bootstrap_servers, transactional_id=service.transactional_id()
        )
    )
    await producers.start()
    try:
        relay.silence()
        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT + 5):  # it waited for good
            assert await service.recompute_once(pool, producers) is None
        assert time.monotonic() - started < TIMEOUT + 1
        assert service.metrics.recompute_failures._value.get() == 1
        relay.speak()
        result = await service.recompute_once(pool, producers)
    finally:
        await producers.stop()
    assert result is not None and [b.scope.label() for b in result.published] == [
        "category:food:USD",
        "merchant:Cafe:USD",
    ]
    records = await read_all(settings.kafka_bootstrap_servers, settings.topic_baselines)
    assert len(records) == 2  # the failed recompute published nothing


async def test_the_leadership_check_and_the_insert_counter_give_up_in_time(
    pool: AsyncConnectionPool, relay: SilenceableRelay, settings: BaselineSettings
) -> None:
    """A leader whose lock session goes silent stands by; a silent insert counter is unknown
    (the schedule falls back to the interval). Both within the bound: the session is cut,
    not cancelled (psycopg's cancellation of a statement waits up to 10 s more on silence)."""
    lock = LeaderLock(settings.database_url, leader_lock_key(settings.database_schema), TIMEOUT)
    await lock.acquire(poll_seconds=0.1)
    assert await inserted_rows(pool) == 0
    try:
        relay.silence()
        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT + 12):
            confirmed, counted = await asyncio.gather(
                lock.confirm(), inserted_rows(pool), return_exceptions=True
            )
        assert time.monotonic() - started < TIMEOUT + 2
        assert isinstance(confirmed, LeadershipLost)
        assert counted is None
    finally:
        relay.speak()
        await lock.release()


async def test_a_standby_on_a_silent_session_tries_again_at_the_bound(
    isolated: Isolated,
    relay: SilenceableRelay,
    settings: BaselineSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A standby's lock attempt on a session gone silent (a dead host behind a middlebox
    that keeps acknowledging) gives up at the bound and is tried again on a new session,
    instead of waiting on the dead one for good and never taking over."""
    key = leader_lock_key(settings.database_schema)
    leader = LeaderLock(isolated.worker_urls[WORKER], key, TIMEOUT)  # not through the relay
    standby = LeaderLock(settings.database_url, key, TIMEOUT)
    await leader.acquire(poll_seconds=0.1)
    attempt = asyncio.create_task(standby.acquire(poll_seconds=0.2))
    try:
        await asyncio.sleep(0.5)  # polling on its open session, refused
        assert not attempt.done()
        relay.silence()
        async with asyncio.timeout(TIMEOUT + 5):
            while "leader lock unavailable" not in caplog.text:  # noqa: ASYNC110 (a log line)
                await asyncio.sleep(0.05)
        relay.speak()
        await leader.release()
        async with asyncio.timeout(10):
            await attempt  # the standby takes over once the database answers
    finally:
        relay.speak()
        attempt.cancel()
        await leader.release()
        await standby.release()
