"""The gateway's promises when its Kafka broker goes silent: the broker's JVM is frozen
(SIGSTOP: connections stay open, no byte is answered, as in a GC pause, a frozen VM or a
partition), then resumed (SIGCONT). The broker is the test's own (ops/kafka.sh), with a
detector on it so that the 201 path is exercised too.

While frozen, every POST (201 path, `?wait=false`, a batch) answers within its bound with a
503 of unknown outcome, never a 2xx, and `/ready` says Kafka is unavailable within its 2 s.
After the resume the gateway recovers by itself (producer and verdict reader: a 201 again),
and every transaction it acknowledged is on the topic exactly once; one of unknown outcome
at most once (the idempotent producer kept it and may have delivered it late)."""

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest

from benchmarks.support import settings_from
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import AUTH_HEADERS, Isolated
from tests.faults.conftest import PrivateKafka, sigterm_and_time
from tests.faults.test_detector_crashes import start_detector
from tests.integration.test_gateway import VALID
from tests.kafka_helpers import read_all
from tests.processes import free_port, get_json, running, wait_for

pytestmark = pytest.mark.faults

PUBLISH_TIMEOUT = 3.0
VERDICT_WAIT = 2.0
READY_BOUND = 2.0
# Past the producer's request timeout (15 s), so a request sent into the silence times out in
# the client before the broker answers it; past the detector's session timeout (10 s) too.
FROZEN_SECONDS = 18.0
# Scheduling slack on a shared 2-core machine.
SLACK = 1.5


class Asked:
    """Every answer with how long it took."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.answers: list[tuple[str, float, int, dict[str, Any]]] = []

    async def call(self, what: str, method: str, path: str, body: Any = None) -> None:
        started = time.monotonic()
        async with self.session.request(method, f"{self.url}{path}", json=body) as reply:
            payload = await reply.json()
        self.answers.append((what, time.monotonic() - started, reply.status, payload))

    async def round(self) -> None:
        """One of each: the 201 path, the 202 path, a batch, the readiness probe."""
        batch = {"transactions": [VALID, {**VALID, "amount": 12}]}
        await asyncio.gather(
            self.call("wait", "POST", "/transactions", VALID),
            self.call("no wait", "POST", "/transactions?wait=false", VALID),
            self.call("batch", "POST", "/transactions/batch", batch),
            self.call("ready", "GET", "/ready"),
        )


BOUNDS = {
    # The publish is never acknowledged: the 503 comes at the publish timeout, the verdict
    # wait never starts.
    "wait": PUBLISH_TIMEOUT,
    "no wait": PUBLISH_TIMEOUT,
    "batch": PUBLISH_TIMEOUT,
    "ready": READY_BOUND,
}


def acknowledged_and_unknown(
    answers: list[tuple[str, float, int, Any]],
) -> tuple[set[str], set[str]]:
    acked: set[str] = set()
    unknown: set[str] = set()
    for what, _, status, body in answers:
        if what == "ready":
            continue
        items = body["results"] if what == "batch" else [body | {"status": status}]
        for item in items:
            txn_id = item.get("id") or item.get("transaction_id")
            (acked if item["status"] in (201, 202) else unknown).add(txn_id)
    return acked, unknown


async def gateway_on(isolated: Isolated, kafka: PrivateKafka) -> tuple[dict[str, str], str]:
    """The environment of a gateway on the private broker (its topics made), and its URL."""
    env = isolated.env | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "PORT": str(free_port()),
        "RATE_LIMIT_RPS": "1000",
        "RATE_LIMIT_BURST": "1000",
        "PUBLISH_TIMEOUT_SECONDS": str(PUBLISH_TIMEOUT),
        "VERDICT_WAIT_SECONDS": str(VERDICT_WAIT),
    }
    await ensure_topics(kafka.bootstrap, project_topics(settings_from(CommonSettings, env)))
    return env, f"http://127.0.0.1:{env['PORT']}"


async def test_a_frozen_broker_gets_bounded_503s_and_the_gateway_recovers(
    isolated: Isolated, private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    bootstrap = private_kafka.bootstrap
    env, url = await gateway_on(isolated, private_kafka)
    detector_env = isolated.worker_env("detector") | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CONSUMER_GROUP": f"silent-{uuid4().hex[:8]}",
    }
    detector, health = start_detector(detector_env, tmp_path / "detector.log")
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        with running("ingest_gateway", env, tmp_path / "gateway.log") as gateway:
            gateway.wait_healthy(f"{url}/health")
            detector.wait_healthy(health)
            async with aiohttp.ClientSession(headers=AUTH_HEADERS, timeout=timeout) as session:
                asked = Asked(session, url)
                await until_scored(asked, 60)  # the 201 path works before the freeze
                before = len(asked.answers)
                with private_kafka.frozen():
                    frozen = time.monotonic()
                    await asked.round()
                    # Again once the producer's first requests into the silence timed out.
                    await asyncio.sleep(max(0.0, frozen + 15.5 - time.monotonic()))
                    await asked.round()
                    await asyncio.sleep(max(0.0, frozen + FROZEN_SECONDS - time.monotonic()))
                during = asked.answers[before:]
                resumed = time.monotonic()
                recovered_in = await until_scored(asked, 90) - resumed
                wait_for(lambda: get_json(f"{url}/ready")[0] == 200, 30, "/ready to say ok")
            gateway.assert_running()
    finally:
        detector.stop()

    topic = Counter(
        r.key.decode() for r in await read_all(bootstrap, isolated.topic("transactions"))
    )
    acked, unknown = acknowledged_and_unknown(asked.answers)
    print(
        "\n| request while frozen | status | seconds |\n"
        + "\n".join(f"| {what} | {status} | {took:.2f} |" for what, took, status, _ in during)
        + f"\nrecovered (a 201) {recovered_in:.1f}s after the resume; acknowledged {len(acked)},"
        f" unknown {len(unknown)}, of those on the topic {len(unknown & set(topic))}"
    )
    for what, took, status, body in during:
        assert status == 503, (what, status, body)
        assert took < BOUNDS[what] + SLACK, (what, took)
        if what != "ready":
            assert body.get("outcome") == "unknown" or all(
                item["status"] == 503 for item in body.get("results", [])
            ), body
    assert all(topic[txn_id] == 1 for txn_id in acked), "an acknowledged transaction not once"
    assert all(topic[txn_id] <= 1 for txn_id in unknown), "a duplicate on the topic"
    assert set(topic) <= acked | unknown


async def until_scored(asked: Asked, timeout: float) -> float:
    """POST (the 201 path) until one is scored; when it was."""
    deadline = time.monotonic() + timeout
    while True:
        await asked.call("wait", "POST", "/transactions", VALID)
        if asked.answers[-1][2] == 201:
            return time.monotonic()
        assert time.monotonic() < deadline, f"no 201 within {timeout}s: {asked.answers[-1]}"
        await asyncio.sleep(0.5)


# SIGTERM to exit with the broker frozen: the request in flight answered at its publish
# timeout, then the producer's bounded flush (shared.kafka.STOP_FLUSH_SECONDS, 5 s).
SIGTERM_BOUND = PUBLISH_TIMEOUT + 5.0 + 3.0


async def test_sigterm_while_the_broker_is_frozen_answers_in_flight_and_exits(
    isolated: Isolated, private_kafka: PrivateKafka, tmp_path: Path
) -> None:
    env, url = await gateway_on(isolated, private_kafka)
    timeout = aiohttp.ClientTimeout(total=120)
    with running("ingest_gateway", env, tmp_path / "gateway.log") as gateway:
        gateway.wait_healthy(f"{url}/health")
        async with aiohttp.ClientSession(headers=AUTH_HEADERS, timeout=timeout) as session:
            asked = Asked(session, url)
            await asked.call("no wait", "POST", "/transactions?wait=false", VALID)
            assert asked.answers[-1][2] == 202
            with private_kafka.frozen():
                in_flight = asyncio.create_task(
                    asked.call("no wait", "POST", "/transactions?wait=false", VALID)
                )
                await asyncio.sleep(0.5)
                code, stopped_in = await sigterm_and_time(gateway.process)
                await in_flight
    print(f"\nSIGTERM with the broker frozen: exit {code} after {stopped_in:.1f}s")
    assert code == 0, gateway.log_tail()
    assert stopped_in < SIGTERM_BOUND, gateway.log_tail()
    _, _, status, body = asked.answers[-1]
    assert (status, body["outcome"]) == (503, "unknown")
