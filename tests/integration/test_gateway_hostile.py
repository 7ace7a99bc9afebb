"""Issue 13 findings on the gateway's input paths: every answer a 4xx naming what is wrong,
never a 500, reads that survive any stored row, bounded metrics and body reads (F3, F8, F10,
F11). Malformed header lines, against a real gateway process: tests/e2e/test_hostile_http.py."""

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ingest_gateway.app import create_app
from ingest_gateway.settings import GatewaySettings
from tests.conftest import API_KEY, AUTH_HEADERS, Isolated
from tests.integration.test_gateway import VALID, published

pytestmark = pytest.mark.integration

# Both ends of finding F3: accepted at 37aed69, then stored in 1 BC and in year 10000.
BEFORE_YEAR_1 = "0001-01-01T00:00:00+14:00"
AFTER_YEAR_9999 = "9999-12-31T23:59:59-14:00"


@pytest.fixture
async def client(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    settings = isolated.settings(
        GatewaySettings, rate_limit_rps=1000, rate_limit_burst=1000, verdict_wait_seconds=0
    )
    async with TestClient(
        TestServer(create_app(settings, CollectorRegistry())), headers=AUTH_HEADERS
    ) as test_client:
        yield test_client


def field_of(body: dict[str, Any]) -> list[str]:
    return [item["field"] for item in body["detail"]]


@pytest.mark.parametrize("instant", [BEFORE_YEAR_1, AFTER_YEAR_9999, "1969-12-31T23:59:59Z"])
async def test_f3_a_date_outside_the_range_is_refused_naming_the_field(
    client: TestClient[Any, Any], isolated: Isolated, instant: str
) -> None:
    response = await client.post("/transactions", json={**VALID, "transaction_date": instant})
    assert response.status == 422
    assert field_of(await response.json()) == ["transaction_date"]
    batch = await client.post(
        "/transactions/batch", json={"transactions": [{**VALID, "transaction_date": instant}]}
    )
    assert (await batch.json())["results"][0]["status"] == 422
    assert await published(isolated) == 0


async def test_f3_rows_stored_out_of_range_still_read(
    client: TestClient[Any, Any], db: Any
) -> None:
    # Rows a gateway without the range accepted: every read containing them failed (422).
    ids = {}
    for name, instant in (("bc", BEFORE_YEAR_1), ("ad10k", AFTER_YEAR_9999)):
        ids[name] = str(
            db.execute(
                "WITH t AS (INSERT INTO transactions (id, amount, currency, category, merchant,"
                " transaction_date, received_at, anomaly, severity, rule, scored_at)"
                " VALUES (gen_random_uuid(), 500, 'USD', 'food', 'Cafe', %s, %s, true, 'high',"
                " 'zscore', now()) RETURNING id)"
                " INSERT INTO alerts (id, transaction_id, severity, rule, alert_message,"
                " baseline_id) SELECT gen_random_uuid(), t.id, 'high', 'zscore', 'm',"
                " gen_random_uuid() FROM t RETURNING transaction_id",
                (instant, instant),
            ).fetchone()[0]
        )
    alerts = await client.get("/alerts")
    assert alerts.status == 200, await alerts.text()
    dates = {a["transaction_id"]: a["transaction_date"] for a in await alerts.json()}
    # PostgreSQL's own text: the instant as stored, nothing invented.
    assert dates == {
        ids["bc"]: "0001-12-31 10:00:00+00 BC",
        ids["ad10k"]: "10000-01-01 13:59:59+00",
    }
    for txn_id in ids.values():
        one = await client.get(f"/transactions/{txn_id}")
        assert one.status == 200, await one.text()
        body = await one.json()
        assert body["transaction_date"] == body["received_at"] == dates[txn_id]


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "²"}, "limit"),
        ({"limit": "٣"}, "limit"),
        ({"limit": "9" * 5000}, "limit"),
        ({"cursor": cursor_of("[" * 5000)}, "cursor"),
        ({"cursor": cursor_of('{"a":' * 1200)}, "cursor"),
        ({"cursor": "A" * 4000}, "cursor"),
        # Well-formed JSON with an id that is not a string: UUID() raised AttributeError (500).
        *(
            ({"cursor": cursor_of(f'{{"t": "2026-01-01T00:00:00Z", "id": {value}}}')}, "cursor")
            for value in ("1", "[]", "{}", "-1", "null", "true")
        ),
        ({"cursor": cursor_of('{"t": 1, "id": "00000000-0000-0000-0000-000000000000"}')}, "cursor"),
    ],
)
@pytest.mark.parametrize("path", ["/alerts", "/suppressions"])
async def test_f8_hostile_query_parameters_are_a_400_naming_them(
    client: TestClient[Any, Any], params: dict[str, str], field: str, path: str
) -> None:
    response = await client.get(path, params=params)
    assert response.status == 400
    assert field_of(await response.json()) == [field]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/alerts", "merchant=A&merchant=B", "merchant"),
        ("/alerts", "limit=1&limit=500", "limit"),
        ("/alerts", "since=2026-01-01T00:00:00Z&since=2026-02-01T00:00:00Z", "since"),
        ("/suppressions", "include_expired=true&include_expired=false", "include_expired"),
    ],
)
async def test_a_single_valued_parameter_given_twice_is_a_400_naming_it(
    client: TestClient[Any, Any], path: str, query: str, field: str
) -> None:
    # One of the two values was dropped without a word: merchant=A&merchant=B listed A's only.
    response = await client.get(f"{path}?{query}")
    assert response.status == 400
    assert field_of(await response.json()) == [field]
    # The filters that take lists still do.
    assert (await client.get("/alerts?severity=high&severity=critical&status=open")).status == 200


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-API-Key": b"test-key-\xff\xfe".decode("latin-1")}, "X-API-Key"),
        ({"Authorization": b"Bearer \xc3\x28key".decode("latin-1")}, "Authorization"),
        ({"X-API-Key": "clé"}, "X-API-Key"),
    ],
)
async def test_f8_a_credential_that_is_not_ascii_is_a_400_naming_the_header(
    isolated: Isolated, headers: dict[str, str], field: str
) -> None:
    settings = isolated.settings(GatewaySettings)
    async with TestClient(TestServer(create_app(settings, CollectorRegistry()))) as anonymous:
        for path in ("/alerts", "/transactions"):
            call = anonymous.get if path == "/alerts" else anonymous.post
            response = await call(path, headers=headers)
            assert response.status == 400, path
            body = await response.json()
            assert field_of(body) == [field]
            assert "key" not in str(body).replace("API key", "")


# Methods the HTTP parser knows (WebDAV and others): each was a new series of every bucket.
EXOTIC_METHODS = ("PROPFIND", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT", "ACL")


async def test_f10_request_methods_do_not_grow_the_metrics(client: TestClient[Any, Any]) -> None:
    for method in EXOTIC_METHODS:
        response = await client.request(method, "/alerts")
        assert response.status == 405
    text = await (await client.get("/metrics")).text()
    methods = {
        line.split('method="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("http_request_duration_seconds_count")
    }
    assert methods == {"other"}


async def raw_post(isolated: Isolated, body_timeout: float, headers: str, body: bytes) -> bytes:
    """An authenticated POST /transactions written byte for byte; the whole answer (the
    gateway closes the connection after it)."""
    settings = isolated.settings(GatewaySettings, body_read_timeout_seconds=body_timeout)
    async with TestServer(create_app(settings, CollectorRegistry())) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            f"POST /transactions HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
            f"Content-Type: application/json\r\n{headers}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)  # read() ends at close
        writer.close()
    return answer


async def test_f11_a_body_that_stalls_gets_408_and_the_connection_closed(
    isolated: Isolated,
) -> None:
    # Authenticated headers, a promise of 100 bytes, one byte, then nothing (held forever at
    # 37aed69).
    started = time.monotonic()
    answer = await raw_post(isolated, 0.5, "Content-Length: 100", b"{")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert 0.4 < time.monotonic() - started < 3
    assert b'"error": "request body not received in time"' in answer
    assert await published(isolated) == 0


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        # Not gzip at all: aiohttp's RequestPayloadError answered 500.
        ("Content-Encoding: gzip\r\nContent-Length: 2", b"{}", 400, "could not be decoded"),
        # A length over MAX_BODY_BYTES, then nothing: a 408 after BODY_READ_TIMEOUT_SECONDS.
        ("Content-Length: 99999999999", b"{", 413, "body too large"),
        # No length said: a chunk past MAX_BODY_BYTES (64 KiB), and the rest never sent. The
        # 413 came, but aiohttp held the connection open up to 10 s more.
        ("Transfer-Encoding: chunked", b"20000\r\n" + b"x" * 0x20000, 413, "body too large"),
    ],
)
async def test_a_body_that_cannot_be_read_is_a_4xx_at_once(
    isolated: Isolated, headers: str, body: bytes, status: int, error: str
) -> None:
    started = time.monotonic()
    answer = await raw_post(isolated, 5, headers, body)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert error.encode() in answer
    assert time.monotonic() - started < 2
    assert await published(isolated) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "0b7f4c2e-3f0a-4a57-9a4b-0c6d9d1d2e3f"),
        ("received_at", "2026-01-01T00:00:00Z"),
        ("schema_version", 1),
    ],
)
async def test_a_field_the_gateway_sets_is_refused_in_a_body_naming_it(
    client: TestClient[Any, Any], isolated: Isolated, field: str, value: object
) -> None:
    # The body is validated once, as the wire record (issue 17): a client must still not
    # choose the record's id, receipt time or version.
    response = await client.post("/transactions", json={**VALID, field: value})
    assert response.status == 422
    assert field_of(await response.json()) == [field]
    batch = await client.post(
        "/transactions/batch", json={"transactions": [{**VALID, field: value}]}
    )
    assert (await batch.json())["results"][0]["status"] == 422
    assert await published(isolated) == 0


async def test_head_answers_every_read_as_its_get_without_a_body(
    client: TestClient[Any, Any],
) -> None:
    # A monitor's HEAD /alerts was a 405 (only the open probes had HEAD).
    for path in ("/alerts", "/suppressions", "/alerts/resolutions"):
        got, head = await client.get(path), await client.head(path)
        assert (head.status, head.headers["Content-Type"]) == (
            got.status,
            got.headers["Content-Type"],
        ), path
        assert await head.read() == b""
    assert (await client.head("/alerts", headers={"Authorization": "Bearer nope"})).status == 401
