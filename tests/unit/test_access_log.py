"""The gateway's access log: one JSON line per request, naming the caller but never the key."""

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ingest_gateway.auth import ApiKeys, Scope
from ingest_gateway.context import ACCESS_LOG_LEVEL, KEYS, METRICS, ROUTE_SCOPES
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.middleware import authenticate, observe, reject
from shared.logging import configure_logging

KEY = "a-secret-key-0123456789"
ID = "5f0c7a4e-8d1b-4c55-9a3e-2b7f1e9c0d42"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def _found(_: web.Request) -> web.Response:
    return web.json_response({"id": ID})


def _app(access_level: int) -> web.Application:
    app = web.Application(middlewares=[observe, reject, authenticate])
    app[METRICS] = GatewayMetrics.create(CollectorRegistry())
    app[KEYS] = ApiKeys({hashlib.sha256(KEY.encode()).hexdigest(): "acme"})
    app[ACCESS_LOG_LEVEL] = access_level
    read: Scope = "read"
    app[ROUTE_SCOPES] = {app.router.add_get("/transactions/{id}", _found): read}
    return app


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(_app(logging.INFO))) as test_client:
        yield test_client


def access_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    return [line for line in lines if line["logger"] == "ingest_gateway.access"]


async def test_one_line_per_request_with_route_status_duration_and_caller_name(
    client: TestClient[web.Request, web.Application], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "ingest_gateway")
    answered = await client.get(f"/transactions/{ID}?key={KEY}", headers={"X-API-Key": KEY})
    refused = await client.get(f"/transactions/{ID}", headers={"Authorization": "Bearer wrong"})
    assert (answered.status, refused.status) == (200, 401)

    [ok, unauthorized] = access_lines(capsys)
    assert ok["method"] == "GET"
    assert ok["route"] == "/transactions/{id}"  # the pattern, not the id nor the query
    assert (ok["status"], ok["caller"], ok["level"]) == (200, "acme", "INFO")
    assert ok["duration_ms"] >= 0
    assert (unauthorized["status"], unauthorized["caller"]) == (401, None)
    assert KEY not in json.dumps([ok, unauthorized]) and "wrong" not in json.dumps(unauthorized)


async def test_an_access_level_below_log_level_turns_the_access_log_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "ingest_gateway")
    async with TestClient(TestServer(_app(logging.DEBUG))) as quiet:
        assert (await quiet.get(f"/transactions/{ID}", headers={"X-API-Key": KEY})).status == 200
    assert access_lines(capsys) == []
