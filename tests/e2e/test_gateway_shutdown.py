"""SIGTERM under load: the gateway stops accepting, finishes what is in flight, flushes the
producer, and exits 0. Every 2xx it gave is on the topic."""

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import AUTH_HEADERS, Isolated
from tests.integration.test_gateway import VALID
from tests.kafka_helpers import read_all
from tests.processes import free_port, running

pytestmark = pytest.mark.e2e


async def test_sigterm_drains_in_flight_requests(isolated: Isolated, tmp_path: Path) -> None:
    port = free_port()
    # No detector runs: each request waits the full second for a verdict, so requests are
    # certainly in flight when SIGTERM arrives.
    env = {
        **isolated.worker_env("gateway"),
        "PORT": str(port),
        "RATE_LIMIT_RPS": "1000",
        "RATE_LIMIT_BURST": "1000",
        "VERDICT_WAIT_SECONDS": "1",
    }
    with running("ingest_gateway", env, tmp_path / "gateway.log") as gateway:
        url = f"http://127.0.0.1:{port}"
        gateway.wait_healthy(f"{url}/health")
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:

            async def post() -> tuple[int, str]:
                async with session.post(f"{url}/transactions", json=VALID) as response:
                    return response.status, json.loads(await response.text()).get("id", "")

            in_flight = [asyncio.create_task(post()) for _ in range(20)]
            await asyncio.sleep(0.4)
            gateway.process.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*in_flight)
        exit_code = await asyncio.to_thread(gateway.process.wait, 30)

    assert exit_code == 0, gateway.log_tail()
    assert [status for status, _ in answers] == [202] * 20
    lifecycle = _lifecycle_lines(tmp_path / "gateway.log")
    assert lifecycle[0]["message"] == "gateway listening"
    assert any(address.endswith(f":{port}") for address in lifecycle[0]["addresses"])
    assert [line["message"] for line in lifecycle[-2:]] == [
        "gateway stopping: draining in-flight requests, flushing the producer",
        "gateway stopped",
    ]
    assert all(line["time"].endswith("Z") for line in lifecycle)
    # The access log's lines wait for the end of the loop's turn: none is lost at shutdown.
    logged = _lines(tmp_path / "gateway.log")
    posts = [n for n, line in enumerate(logged) if line["logger"] == "ingest_gateway.access"]
    posts = [n for n in posts if logged[n]["route"] == "/transactions"]
    assert [logged[n]["status"] for n in posts] == [202] * 20
    assert max(posts) < len(logged) - 1 and logged[-1]["message"] == "gateway stopped"
    records = await read_all(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("transactions")
    )
    assert {r.key.decode() for r in records} == {txn_id for _, txn_id in answers}


def _lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _lifecycle_lines(log: Path) -> list[dict[str, Any]]:
    return [line for line in _lines(log) if line["logger"] == "ingest_gateway.server"]
