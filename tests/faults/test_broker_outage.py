"""The Kafka broker stopped and restarted under HTTP load: while it is down the gateway
answers 503 (never a false 2xx), it recovers by itself, and every transaction it
acknowledged is on the topic. The broker is the test's own (ops/kafka.sh, private ports)."""

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from benchmarks.support import settings_from
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import AUTH_HEADERS, Isolated
from tests.faults.conftest import PrivateKafka
from tests.integration.test_gateway import VALID
from tests.kafka_helpers import read_all
from tests.processes import free_port, get_json, running, wait_for

pytestmark = pytest.mark.faults


class Load:
    """Four clients posting back to back; every answer is kept with when it was asked."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int, str]] = []
        self.stopping = asyncio.Event()

    async def client(self, session: aiohttp.ClientSession) -> None:
        while not self.stopping.is_set():
            asked = time.monotonic()
            async with session.post(f"{self.url}/transactions?wait=false", json=VALID) as reply:
                body = await reply.json()
                self.answers.append((asked, reply.status, body.get("id", "")))


async def test_a_broker_outage_gets_503s_and_loses_nothing_acknowledged(
    isolated: Isolated, private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    env = isolated.env | {
        "KAFKA_BOOTSTRAP_SERVERS": private_kafka.bootstrap,
        "PORT": str(free_port()),
        "RATE_LIMIT_RPS": "100000",
        "RATE_LIMIT_BURST": "100000",
        "GLOBAL_RATE_LIMIT_RPS": "100000",
        "GLOBAL_RATE_LIMIT_BURST": "100000",
        "PUBLISH_TIMEOUT_SECONDS": "2",
    }
    await ensure_topics(private_kafka.bootstrap, project_topics(settings_from(CommonSettings, env)))
    url = f"http://127.0.0.1:{env['PORT']}"
    with running("ingest_gateway", env, tmp_path / "gateway.log") as gateway:
        gateway.wait_healthy(f"{url}/health")
        load = Load(url)
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:
            clients = [asyncio.create_task(load.client(session)) for _ in range(4)]
            await asyncio.sleep(3)
            await asyncio.to_thread(private_kafka.run, "stop")
            stopped = time.monotonic()
            await asyncio.sleep(8)
            restarting = time.monotonic()
            await asyncio.to_thread(private_kafka.run, "start")
            restarted = time.monotonic()
            await asyncio.sleep(12)
            load.stopping.set()
            await asyncio.gather(*clients)
        gateway.assert_running()

    statuses = Counter(status for _, status, _ in load.answers)
    # Asked once the broker was gone, and timed out (PUBLISH_TIMEOUT_SECONDS=2) before it was
    # started again: none of these can have been acknowledged.
    during = Counter(s for t, s, _ in load.answers if stopped < t < restarting - 2.5)
    recovered = [t for t, s, _ in load.answers if t > restarted and s == 202]
    acked = {txn_id for _, status, txn_id in load.answers if status == 202}
    on_topic = {
        r.key.decode()
        for r in await read_all(private_kafka.bootstrap, isolated.topic("transactions"))
    }
    recovery = (min(recovered) - restarted) if recovered else float("inf")
    print(
        f"\n| answers | 202 | 503 | other | acked on topic | recovery after restart |"
        f"\n| {len(load.answers)} | {statuses[202]} | {statuses[503]} | "
        f"{sum(statuses.values()) - statuses[202] - statuses[503]} | "
        f"{len(acked & on_topic)}/{len(acked)} | {recovery:.1f}s |"
    )
    assert set(statuses) <= {202, 503}
    assert during[503] > 0
    assert during[202] == 0  # nothing acknowledged while the broker was down
    assert recovered, "the gateway did not recover by itself"
    assert acked <= on_topic


def probe(url: str) -> tuple[int, dict[str, Any]]:
    status, body = get_json(f"{url}/ready", timeout=5)
    return status, body


async def test_ready_says_kafka_is_unavailable_while_the_broker_is_down(
    isolated: Isolated, private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    # /ready asked the producer for the topic's partitions, which it answered from cached
    # metadata: "kafka": "ok" with the broker stopped, while every POST got a 503.
    env = isolated.env | {"KAFKA_BOOTSTRAP_SERVERS": private_kafka.bootstrap}
    env |= {"PORT": str(free_port())}
    await ensure_topics(private_kafka.bootstrap, project_topics(settings_from(CommonSettings, env)))
    url = f"http://127.0.0.1:{env['PORT']}"
    with running("ingest_gateway", env, tmp_path / "gateway.log") as gateway:
        gateway.wait_healthy(f"{url}/health")
        assert probe(url) == (200, {"status": "ok", "checks": {"postgres": "ok", "kafka": "ok"}})
        await asyncio.to_thread(private_kafka.run, "stop")
        started = time.monotonic()
        status, body = probe(url)
        assert time.monotonic() - started < 3  # its own bound, 2 s
        assert (status, body["checks"]["postgres"]) == (503, "ok")
        assert body["checks"]["kafka"].startswith("unavailable: ")
        assert get_json(f"{url}/health")[0] == 200  # alive: nothing to restart
        await asyncio.to_thread(private_kafka.run, "start")
        wait_for(lambda: probe(url)[0] == 200, 60, "/ready to say ok again")
        gateway.assert_running()


async def test_a_gateway_started_without_kafka_serves_reads_and_says_what_is_missing(
    isolated: Isolated, private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    # It exited 1 with a traceback: nothing answered, not even /health, and under supervisord
    # it was given up on (FATAL) after its restarts if Kafka stayed away a few minutes.
    env = isolated.env | {"KAFKA_BOOTSTRAP_SERVERS": private_kafka.bootstrap}
    env |= {"PORT": str(free_port()), "VERDICT_WAIT_SECONDS": "0"}
    await ensure_topics(private_kafka.bootstrap, project_topics(settings_from(CommonSettings, env)))
    await asyncio.to_thread(private_kafka.run, "stop")
    url = f"http://127.0.0.1:{env['PORT']}"
    with running("ingest_gateway", env, tmp_path / "gateway.log") as gateway:
        gateway.wait_healthy(f"{url}/health")
        status, body = probe(url)
        assert (status, body["checks"]["postgres"]) == (503, "ok")
        assert body["checks"]["kafka"].startswith("unavailable: ")
        assert get_json(f"{url}/alerts", headers=AUTH_HEADERS) == (200, [])
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:
            async with session.post(f"{url}/transactions", json=VALID) as reply:
                assert reply.status == 503
                assert (await reply.json())["error"] == (
                    "Kafka unavailable: nothing was published; retry later"
                )
            await asyncio.to_thread(private_kafka.run, "start")
            wait_for(lambda: probe(url)[0] == 200, 90, "the gateway to reach Kafka")
            async with session.post(f"{url}/transactions", json=VALID) as reply:
                assert reply.status == 202
        gateway.assert_running()
    on_topic = await read_all(private_kafka.bootstrap, isolated.topic("transactions"))
    assert len(on_topic) == 1  # the 503 published nothing
