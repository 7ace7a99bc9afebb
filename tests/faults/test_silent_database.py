"""PostgreSQL that goes silent (a dead host, a network partition: no error, no answer) while
the gateway serves reads. Every read answers within DATABASE_TIMEOUT_SECONDS with a 503 that
says why, /ready within its 2 s, and both are back once the database answers again.

The silence is a TCP relay between the gateway and the shared PostgreSQL that stops passing
bytes on command, connections left open: what a stopped PostgreSQL cannot show (it refuses,
and a refusal was always a quick 503)."""

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ingest_gateway.app import create_app
from ingest_gateway.context import POOL
from ingest_gateway.settings import GatewaySettings
from tests.conftest import AUTH_HEADERS, SCOPED_KEYS, Isolated

pytestmark = pytest.mark.faults

READS = ("/alerts", f"/transactions/{'0' * 8}-0000-0000-0000-{'0' * 12}", "/suppressions")
TIMEOUT = 1.0


class SilenceableRelay:
    """Relays TCP to `target`; `silence()` stops passing bytes, connections stay open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._speaking = asyncio.Event()
        self._speaking.set()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    def silence(self) -> None:
        self._speaking.clear()

    def speak(self) -> None:
        self._speaking.set()

    async def __aenter__(self) -> "SilenceableRelay":
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(
            self._upstream(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """What the client sends (a subclass may watch it)."""
        await self._pipe(reader, writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError):
            while data := await reader.read(65536):
                await self._speaking.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


def through(url: str, port: int) -> tuple[str, tuple[str, int]]:
    parts = urllib.parse.urlsplit(url)
    target = (parts.hostname or "127.0.0.1", parts.port or 5432)
    netloc = f"{parts.netloc.rpartition('@')[0]}@127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl(), target


@pytest.fixture
async def relay(isolated: Isolated) -> AsyncIterator[SilenceableRelay]:
    _, target = through(isolated.worker_urls["gateway"], 0)
    async with SilenceableRelay(target) as running:
        yield running


@pytest.fixture
async def client(
    isolated: Isolated, relay: SilenceableRelay
) -> AsyncIterator[TestClient[Any, Any]]:
    url, _ = through(isolated.worker_urls["gateway"], relay.port)
    settings = isolated.settings(
        GatewaySettings,
        database_url=url,
        database_timeout_seconds=TIMEOUT,
        rate_limit_rps=1000,
        rate_limit_burst=1000,
    )
    async with TestClient(
        TestServer(create_app(settings, CollectorRegistry())), headers=AUTH_HEADERS
    ) as test_client:
        yield test_client


async def timed_get(client: TestClient[Any, Any], path: str) -> tuple[int, Any, float]:
    started = time.monotonic()
    response = await client.get(path)
    return response.status, await response.json(), time.monotonic() - started


async def test_reads_from_a_silent_database_are_a_503_in_time_and_recover(
    client: TestClient[Any, Any], relay: SilenceableRelay
) -> None:
    for path in READS:
        assert (await client.get(path)).status in (200, 404)
    relay.silence()
    # At once, more reads than the pool has connections: each waits on a silent one or on
    # the pool, and each must be answered at the bound (it was never, or after 30 s).
    answers = await asyncio.gather(*(timed_get(client, path) for path in READS * 4))
    for status, body, seconds in answers:
        assert status == 503
        assert body["error"] == "database did not answer within 1 s; retry later"
        assert seconds < TIMEOUT + 1.5
    status, body, seconds = await timed_get(client, "/ready")
    assert (status, body["checks"]["postgres"]) == (503, "unavailable: TimeoutError")
    assert seconds < 3.5

    relay.speak()
    # The connections given up on end their cancellation (psycopg's, bounded) and are
    # replaced: reads come back without a restart.
    deadline = time.monotonic() + 30
    while (await client.get("/alerts")).status != 200:
        assert time.monotonic() < deadline, "reads did not come back"
        await asyncio.sleep(0.5)
    assert (await client.get("/ready")).status == 200


async def test_a_signed_in_page_on_a_silent_database_is_a_503_in_time(
    isolated: Isolated, relay: SilenceableRelay
) -> None:
    """A browser's request carries a session cookie, not a key: the session's lookup is a read
    too, and signing in writes one; neither was bounded (the inbox waited forever)."""
    url, _ = through(isolated.worker_urls["gateway"], relay.port)
    settings = isolated.settings(
        GatewaySettings, database_url=url, database_timeout_seconds=TIMEOUT
    )
    app = create_app(settings, CollectorRegistry())
    async with TestClient(TestServer(app)) as browser:
        signed_in = await browser.post(
            "/ui/sign-in", data={"api_key": SCOPED_KEYS["analyst"]}, allow_redirects=False
        )
        assert signed_in.status == 303
        # Idle connections in the pool, each to be silent below (the pool grows on demand).
        async with asyncio.timeout(10):
            while app[POOL].get_stats()["pool_size"] < 3:
                await asyncio.gather(*(browser.get("/ui/inbox/updates") for _ in range(6)))
        relay.silence()
        async with asyncio.timeout(2 * TIMEOUT + 5):  # they waited for good
            started = time.monotonic()
            again = await browser.post("/ui/sign-in", data={"api_key": SCOPED_KEYS["analyst"]})
            sign_in_seconds = time.monotonic() - started
            status, body, seconds = await timed_get(browser, "/ui/inbox/updates")
        relay.speak()
    assert again.status == 503
    assert sign_in_seconds < TIMEOUT + 1.5
    assert (status, body["error"]) == (503, "database did not answer within 1 s; retry later")
    assert seconds < TIMEOUT + 1.5
