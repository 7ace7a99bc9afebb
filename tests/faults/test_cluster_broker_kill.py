"""A three-broker cluster (replication factor 3, min.insync.replicas=2, producers acks=all)
loses the broker that leads most partitions of `transactions` to kill -9 under load through
the real gateway and detector, and gets it back later. Users who run Kafka as a cluster are
promised: every request answered 2xx, nothing lost, nothing doubled, and no stall longer than
the cluster needs to notice the death and elect new leaders (Kafka's defaults: the controller
fences a broker after broker.session.timeout.ms = 9 s without a heartbeat)."""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest

from benchmarks.support import settings_from
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import AUTH_HEADERS, Isolated
from tests.faults.cluster import KafkaCluster, Leadership, leadership, wait_fully_replicated
from tests.faults.test_detector_crashes import persisted, start_detector
from tests.integration.test_gateway import VALID
from tests.kafka_helpers import read_all
from tests.processes import Worker, free_port, running, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

RATE_PER_SECOND = 150
BEFORE_KILL_SECONDS = 5
KILLED_SECONDS = 15  # the node stays dead well past the leader election
AFTER_RESTART_SECONDS = 10
# Failure detection (9 s) plus the election, the clients' metadata refresh and a retry
# backoff, with room for a busy 2-core machine: no progress for longer is a stall.
STALL_BOUND_SECONDS = 30.0


@dataclass(frozen=True)
class Answer:
    asked: float
    answered: float
    status: int  # 0: no HTTP answer at all (connection error, client timeout)
    transaction_id: str


class PacedLoad:
    """POSTs at a fixed rate whatever the answers take (open loop): a stalled gateway faces
    the same offered load as a healthy one, as it would in production."""

    def __init__(self, url: str, rate: float) -> None:
        self.url = url
        self.interval = 1.0 / rate
        self.answers: list[Answer] = []
        self.stopping = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        due = time.monotonic()
        while not self.stopping.is_set():
            task = asyncio.create_task(self._post(session))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due += self.interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*in_flight)

    async def _post(self, session: aiohttp.ClientSession) -> None:
        asked = time.monotonic()
        try:
            async with session.post(f"{self.url}/transactions?wait=false", json=VALID) as reply:
                status, txn_id = reply.status, (await reply.json()).get("id", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, txn_id = 0, repr(exc)
        self.answers.append(Answer(asked, time.monotonic(), status, txn_id))

    def acknowledged(self, by: float) -> int:
        return sum(1 for a in self.answers if 200 <= a.status < 300 and a.answered <= by)


class Progress:
    """Samples the count of persisted transactions, to find the detector's longest stall."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.samples: list[tuple[float, int]] = []
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            count = await asyncio.to_thread(persisted, self.db)
            self.samples.append((time.monotonic(), count))
            await asyncio.sleep(0.25)

    def longest_stall(self, load: PacedLoad) -> float:
        """The longest time the count stood still while acknowledged work was waiting."""
        longest, since, last, previous = 0.0, None, -1, 0.0
        for at, count in self.samples:
            if count != last:
                since, last = None, count
            elif since is None and load.acknowledged(by=previous) > count:
                since = previous  # standing still since the sample before at least
            if since is not None:
                longest = max(longest, at - since)
            previous = at
        return longest


def longest_gap(times: list[float]) -> float:
    ordered = sorted(times)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0.0)


def worker_envs(isolated: Isolated, cluster: KafkaCluster) -> tuple[dict[str, str], dict[str, str]]:
    """The gateway's and the detector's environment, on the cluster."""
    on_cluster = {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "TOPIC_REPLICATION_FACTOR": str(cluster.replication_factor),
    }
    limits = ("RATE_LIMIT_RPS", "RATE_LIMIT_BURST")
    unlimited = {f"{scope}{limit}": "100000" for scope in ("", "GLOBAL_") for limit in limits}
    gateway = isolated.worker_env("gateway") | on_cluster | unlimited | {"PORT": str(free_port())}
    group = {"CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}"}
    return gateway, isolated.worker_env("detector") | on_cluster | group


@asynccontextmanager
async def sampled(progress: Progress) -> AsyncIterator[Progress]:
    sampling = asyncio.create_task(progress.run())
    try:
        yield progress
    finally:
        progress.stopping.set()
        await sampling


@asynccontextmanager
async def loaded(url: str) -> AsyncIterator[PacedLoad]:
    """The paced load for the body of the block; every request answered on the way out."""
    load = PacedLoad(url, RATE_PER_SECOND)
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS, connector=connector) as session:
        posting = asyncio.create_task(load.run(session))
        try:
            yield load
        finally:
            load.stopping.set()
            await posting


@dataclass(frozen=True)
class Outage:
    victim: int
    before: Leadership
    killed: float
    restarted: float


async def kill_and_restart_busiest(
    cluster: KafkaCluster, topic: str, workers: list[Worker]
) -> Outage:
    """kill -9 the node leading most of `topic`, wait, start it again."""
    before = await leadership(cluster, topic)
    victim = before.busiest_leader()
    await asyncio.to_thread(cluster.kill, victim)
    killed = time.monotonic()
    await asyncio.sleep(KILLED_SECONDS)
    for worker in workers:
        worker.assert_running()  # waiting the election out, not crashed
    await asyncio.to_thread(cluster.start, victim)
    return Outage(victim, before, killed, time.monotonic())


async def test_a_cluster_loses_its_busiest_broker_and_the_clients_notice_nothing(
    isolated: Isolated, kafka_cluster: KafkaCluster, db: Any, tmp_path: Path
) -> None:
    gateway_env, detector_env = worker_envs(isolated, kafka_cluster)
    await ensure_topics(
        kafka_cluster.bootstrap, project_topics(settings_from(CommonSettings, detector_env))
    )
    transactions = isolated.topic("transactions")
    url = f"http://127.0.0.1:{gateway_env['PORT']}"
    detector, health = start_detector(detector_env, tmp_path / "detector.log")
    try:
        with running("ingest_gateway", gateway_env, tmp_path / "gateway.log") as gateway:
            detector.wait_healthy(health)
            gateway.wait_healthy(f"{url}/health")
            async with sampled(Progress(db)) as progress:
                async with loaded(url) as load:
                    await asyncio.sleep(BEFORE_KILL_SECONDS)
                    outage = await kill_and_restart_busiest(
                        kafka_cluster, transactions, [detector, gateway]
                    )
                    await asyncio.sleep(AFTER_RESTART_SECONDS)
                acked = {a.transaction_id for a in load.answers if 200 <= a.status < 300}
                wait_for(lambda: persisted(db) >= len(acked), 180, "every acknowledged one stored")
            detector.assert_running()
            gateway.assert_running()
    finally:
        detector.stop()
    await wait_fully_replicated(kafka_cluster, transactions, timeout=120)
    rejoined = time.monotonic() - outage.restarted

    rows, distinct = db.execute("SELECT count(*), count(DISTINCT id) FROM transactions").fetchone()
    stored = {str(row[0]) for row in db.execute("SELECT id FROM transactions").fetchall()}
    on_topic = [r.key.decode() for r in await read_all(kafka_cluster.bootstrap, transactions)]
    statuses = sorted({a.status for a in load.answers})
    slowest = max(a.answered - a.asked for a in load.answers)
    gateway_stall = longest_gap([a.answered for a in load.answers if a.answered > outage.killed])
    detector_stall = progress.longest_stall(load)
    led = sum(1 for node in outage.before.leaders.values() if node == outage.victim)
    print(
        f"\nkilled node {outage.victim} (leader of {led}/{len(outage.before.leaders)} partitions"
        f" of transactions; active controller: node {outage.before.controller}); every ISR full"
        f" again {rejoined:.1f}s after its restart"
        f"\n| sent | acknowledged | persisted | duplicates (rows/on topic) | statuses "
        f"| slowest answer | longest gap between answers | detector stall |"
        f"\n| {len(load.answers)} | {len(acked)} | {rows} | {rows - distinct}/"
        f"{len(on_topic) - len(set(on_topic))} | {statuses} | {slowest:.1f}s "
        f"| {gateway_stall:.1f}s | {detector_stall:.1f}s |"
    )
    assert statuses == [202], "every request answered 2xx"
    assert stored == acked, "nothing lost, nothing stored that was not acknowledged"
    assert rows == distinct, "nothing stored twice"
    assert slowest < STALL_BOUND_SECONDS
    assert detector_stall < STALL_BOUND_SECONDS
