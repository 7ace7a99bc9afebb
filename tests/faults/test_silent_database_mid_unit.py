"""PostgreSQL going silent in the middle of a unit of work, not before it: at its COMMIT,
after an Idempotency-Key's claim, or for one connection alone. Each waited past its bound
(or, for the orphan, for hours) before `shared.db.bounded_connection` ended the transaction
inside the bound and the server was told to end sessions left idle in a transaction.

The relays pass bytes until the client sends what the test names, then go silent with the
connections open (a dead host behind a middlebox that keeps acknowledging)."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from baseline_worker.cadence import inserted_rows
from baseline_worker.leadership import LeaderLock, LeadershipLost, leader_lock_key
from detector_worker import store
from detector_worker.metrics import DetectorMetrics
from detector_worker.pipeline import DetectorPipeline
from detector_worker.settings import DetectorSettings
from detector_worker.store import open_store_pool
from ingest_gateway.metrics import GatewayMetrics
from shared.db import bounded_connection, fetch_dicts, open_pool
from shared.kafka import RenewableProducer, make_producer
from tests.conftest import Isolated
from tests.faults.test_silent_database import SilenceableRelay, client, through
from tests.faults.test_silent_database_detector import (
    detector_pipeline,
    record,
    retries,
    transaction,
)
from tests.integration.test_gateway import VALID, insert_alerts

pytestmark = pytest.mark.faults
__all__ = ["client"]  # a fixture, used by name

TIMEOUT = 1.0


class SilentAt(SilenceableRelay):
    """Every connection goes silent once a client sends `pattern` (while armed)."""

    pattern = b"COMMIT"
    armed = False

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError):
            while data := await reader.read(65536):
                if self.armed and self.pattern in data:
                    self.silence()
                await self._speaking.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


class OneSilentAt(SilenceableRelay):
    """The first connection to send `pattern` once armed goes silent, alone (a flow a NAT or
    a load balancer dropped); every other connection keeps working."""

    pattern = b"COMMIT"
    armed = False

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, upstream_writer]
        speaking = asyncio.Event()
        speaking.set()
        await asyncio.gather(
            self._one_way(reader, upstream_writer, speaking, watch=True),
            self._one_way(upstream_reader, writer, speaking, watch=False),
        )

    async def _one_way(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        speaking: asyncio.Event,
        *,
        watch: bool,
    ) -> None:
        with suppress(OSError):
            while data := await reader.read(65536):
                if watch and self.armed and self.pattern in data:
                    self.armed = False
                    speaking.clear()
                await speaking.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


async def relayed_url(
    isolated: Isolated, worker: str, relay_type: type[SilenceableRelay]
) -> tuple[SilenceableRelay, str]:
    _, target = through(isolated.worker_urls[worker], 0)
    relay = relay_type(target)
    await relay.__aenter__()
    return relay, through(isolated.worker_urls[worker], relay.port)[0]


@pytest.fixture
async def relay(isolated: Isolated) -> AsyncIterator[SilentAt]:
    """The relay test_silent_database's `client` fixture reaches the gateway's login by."""
    _, target = through(isolated.worker_urls["gateway"], 0)
    async with SilentAt(target) as running:
        assert isinstance(running, SilentAt)
        yield running
        running.speak()


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/suppressions", {"category": "food", "reason": "promo", "duration_hours": 2}, {}),
        ("/transactions", VALID, {"Idempotency-Key": "k-1"}),  # the key's claim commits
    ],
)
async def test_a_write_whose_commit_meets_silence_answers_503_in_time(
    relay: SilentAt,
    client: TestClient[Any, Any],
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    relay.armed = True
    started = time.monotonic()
    async with asyncio.timeout(TIMEOUT + 8):  # it waited on the COMMIT for good
        response = await client.post(path, json=body, headers=headers)
    assert response.status == 503
    assert time.monotonic() - started < TIMEOUT + 2


async def test_a_keyed_write_cut_after_its_claim_answers_within_one_bound(
    relay: SilentAt, client: TestClient[Any, Any], db: Any
) -> None:
    """The write is cut at the bound; the claim is released in the background, not with a
    second bound spent on the same silent database before the 503."""
    insert_alerts(db, 1)
    (transaction_id,) = db.execute("SELECT transaction_id FROM alerts").fetchone()
    relay.pattern, relay.armed = b"INSERT INTO reversals", True
    started = time.monotonic()
    response = await client.post(
        f"/transactions/{transaction_id}/reversal",
        json={"reason": "refunded"},
        headers={"Idempotency-Key": "rev-1"},
    )
    elapsed = time.monotonic() - started
    assert response.status == 503
    assert elapsed < 1.8 * TIMEOUT, f"{elapsed:.1f} s: a second bound on the release"
    relay.speak()
    # Released once the database answers: the same request, sent again, does the work.
    relay.armed = False
    async with asyncio.timeout(10):
        while True:
            again = await client.post(
                f"/transactions/{transaction_id}/reversal",
                json={"reason": "refunded"},
                headers={"Idempotency-Key": "rev-1"},
            )
            if again.status != 409:  # still claimed: the release is on its way
                break
            await asyncio.sleep(0.1)
    assert again.status in (200, 201)


async def test_the_insert_counter_gives_up_at_its_commit(isolated: Isolated) -> None:
    relay, url = await relayed_url(isolated, "baseline", SilentAt)
    assert isinstance(relay, SilentAt)
    pool = await open_pool(url, isolated.schema, connection_timeout=TIMEOUT)
    try:
        assert await inserted_rows(pool) == 0
        relay.armed = True
        started = time.monotonic()
        async with asyncio.timeout(TIMEOUT + 8):
            assert await inserted_rows(pool) is None
        assert time.monotonic() - started < TIMEOUT + 2
    finally:
        relay.speak()
        await pool.close()
        await relay.__aexit__()


async def test_a_connection_cut_as_its_last_answer_came_is_not_reused(
    isolated: Isolated,
) -> None:
    """The bound passes in the loop turn that reads the unit's last answer: the unit ends
    well, its socket is shut all the same, and the next unit must not get that connection
    (a false 503 on a healthy database)."""
    pool = await open_pool(
        isolated.worker_urls["gateway"], isolated.schema, connection_timeout=TIMEOUT, max_size=1
    )
    try:
        async with bounded_connection(pool, 0.2) as conn:
            await conn.execute("SELECT 1")
            await conn.commit()  # the unit's last answer
            time.sleep(0.3)  # noqa: ASYNC251 (a loop busy past the bound)
            await asyncio.sleep(0)  # the loop's turn: the bound's timer cuts the socket
        histogram = GatewayMetrics.create(CollectorRegistry()).db_query_duration
        assert await fetch_dicts(pool, histogram, "one", "SELECT 1 AS one", ()) == [{"one": 1}]
    finally:
        await pool.close()


@pytest.fixture
async def orphaning_pipeline(
    isolated: Isolated, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[DetectorPipeline, DetectorMetrics, OneSilentAt]]:
    monkeypatch.setattr(store, "SMALL_BATCH", 0)  # the COPY path: a transaction, a COMMIT
    relay, url = await relayed_url(isolated, "detector", OneSilentAt)
    assert isinstance(relay, OneSilentAt)
    settings = isolated.settings(DetectorSettings, database_url=url)
    metrics = DetectorMetrics.create(CollectorRegistry())
    pool: AsyncConnectionPool = await open_store_pool(
        url, settings.database_schema, write_timeout=TIMEOUT
    )
    producer = RenewableProducer(lambda: make_producer(settings.kafka_bootstrap_servers))
    await producer.start()
    try:
        yield detector_pipeline(settings, pool, producer, metrics), metrics, relay
    finally:
        await producer.stop()
        await pool.close()
        await relay.__aexit__()


async def test_a_write_cut_at_its_commit_does_not_block_its_retry_for_hours(
    orphaning_pipeline: tuple[DetectorPipeline, DetectorMetrics, OneSilentAt], db: Any
) -> None:
    """The cut write's server session stays idle in its transaction, holding the batch's
    rows; the retry inserts the same ids and waited on it until the server's keepalives
    noticed (~2 h). The server now ends such a session after twice the bound."""
    pipeline, metrics, relay = orphaning_pipeline
    batch = [record(transaction(), offset) for offset in range(5)]
    relay.armed = True
    processing = asyncio.ensure_future(pipeline.process(batch))
    async with asyncio.timeout(30):
        await processing
    assert retries(metrics) >= 1  # the first attempt was cut
    assert db.execute("SELECT count(*) FROM transactions").fetchone() == (5,)


async def test_a_lock_session_its_leader_lost_does_not_keep_the_lock(isolated: Isolated) -> None:
    """The leader's lock session goes silent (its flow dropped by a middlebox that still
    acknowledges the server): the leader stands by, and the session it left behind on the
    server must not keep the lock, or nobody leads (~2 h with the server's keepalives
    acknowledged by the middlebox: for good)."""
    relay, url = await relayed_url(isolated, "baseline", OneSilentAt)
    assert isinstance(relay, OneSilentAt)
    relay.pattern = b"SELECT true"  # the leader's check
    key = leader_lock_key(isolated.schema)
    leader = LeaderLock(url, key, TIMEOUT, idle_seconds=3)
    other = LeaderLock(isolated.worker_urls["baseline"], key, TIMEOUT, idle_seconds=3)
    try:
        await leader.acquire(poll_seconds=0.1)
        relay.armed = True
        with pytest.raises(LeadershipLost):
            await leader.confirm()
        async with asyncio.timeout(15):
            await other.acquire(poll_seconds=0.5)
    finally:
        await leader.release()
        await other.release()
        await relay.__aexit__()
