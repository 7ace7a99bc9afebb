"""The gateway against the real broker and database: accepted means published, rejected
means nothing published and a 4xx naming the field."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ingest_gateway.app import create_app
from ingest_gateway.settings import GatewaySettings
from schemas import Transaction
from tests.conftest import AUTH_HEADERS, Isolated
from tests.kafka_helpers import end_offsets, read_all

pytestmark = pytest.mark.integration

VALID = {
    "amount": 10000,
    "category": "food",
    "merchant": "Starbucks",
    "transaction_date": "2025-12-14T12:00:00Z",
}


@asynccontextmanager
async def gateway_client(
    isolated: Isolated, **overrides: Any
) -> AsyncIterator[TestClient[Any, Any]]:
    """An in-process gateway on the test's topics and schema, rate limits out of the way."""
    limits = {"rate_limit_rps": 1000, "rate_limit_burst": 1000}
    settings = isolated.settings(GatewaySettings, **(limits | overrides))
    app = create_app(settings, CollectorRegistry())
    async with TestClient(TestServer(app), headers=AUTH_HEADERS) as test_client:
        yield test_client


@pytest.fixture
async def client(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    async with gateway_client(isolated, verdict_wait_seconds=0.2) as test_client:
        yield test_client


async def published(isolated: Isolated) -> int:
    offsets = await end_offsets(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("transactions")
    )
    return sum(offsets.values())


async def test_a_valid_transaction_is_published_before_the_reply(
    client: TestClient[Any, Any], isolated: Isolated
) -> None:
    response = await client.post("/transactions", json={**VALID, "amount": "12.34"})
    # No detector runs here: after the bounded wait the answer is 202, pending.
    assert response.status == 202
    body = await response.json()
    assert body["status"] == "pending" and body["anomaly"] is None
    records = await read_all(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("transactions")
    )
    assert len(records) == 1
    assert records[0].key == body["id"].encode()
    txn = Transaction.model_validate_json(records[0].value)
    assert str(txn.id) == body["id"]
    assert str(txn.amount) == "12.34"
    assert txn.received_at is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in VALID.items() if k != "amount"}, "amount"),
        ({k: v for k, v in VALID.items() if k != "merchant"}, "merchant"),
        ({**VALID, "amount": -5}, "amount"),
        ({**VALID, "amount": 0}, "amount"),
        ({**VALID, "amount": "ten"}, "amount"),
        ({**VALID, "amount": "1.234"}, "amount"),
        ({**VALID, "amount": "1.5", "currency": "JPY"}, "amount"),
        ({**VALID, "currency": "XYZ"}, "currency"),
        ({**VALID, "amount": 1e20}, "amount"),
        ({**VALID, "category": ""}, "category"),
        ({**VALID, "transaction_date": "yesterday"}, "transaction_date"),
        ({**VALID, "transaction_date": "2999-01-01T00:00:00Z"}, "transaction_date"),
        ({**VALID, "currency": "usd"}, "currency"),
        ({**VALID, "surprise": True}, "surprise"),
    ],
)
async def test_bad_fields_are_named_and_nothing_is_published(
    client: TestClient[Any, Any], isolated: Isolated, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/transactions", json=body)
    assert response.status == 422
    error = await response.json()
    assert field in [item["field"] for item in error["detail"]]
    assert await published(isolated) == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b'{"amount": 1,', "application/json", 400),
        (
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "application/json",
            400,
        ),
        (b'{"amount": NaN}', "application/json", 400),
        # Which amount? Refused (RFC 7493), never the last one silently.
        (b'{"amount": 1, "amount": 9999}', "application/json", 400),
        (b"amount=1", "application/x-www-form-urlencoded", 415),
        (b"[1, 2]", "application/json", 422),
        (b"{" + b'"a":"' + b"x" * 70_000 + b'"}', "application/json", 413),
    ],
)
async def test_malformed_requests_get_a_4xx_json_error(
    client: TestClient[Any, Any], isolated: Isolated, data: bytes, content_type: str, status: int
) -> None:
    response = await client.post("/transactions", data=data, headers={"Content-Type": content_type})
    assert response.status == status
    assert "error" in await response.json()
    assert await published(isolated) == 0


async def test_rate_limit_answers_429_with_retry_after(isolated: Isolated) -> None:
    settings = isolated.settings(GatewaySettings, rate_limit_rps=1, rate_limit_burst=2)
    app = create_app(settings, CollectorRegistry())
    async with TestClient(TestServer(app), headers=AUTH_HEADERS) as client:
        statuses = [(await client.get("/alerts")).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = await client.get("/alerts")
        assert int(limited.headers["Retry-After"]) >= 1
        assert (await client.get("/health")).status == 200  # health stays open


async def test_alert_limit_is_validated(client: TestClient[Any, Any]) -> None:
    for bad in ("0", "-1", "abc", "100000"):
        response = await client.get("/alerts", params={"limit": bad})
        assert response.status == 400
        assert (await response.json())["detail"][0]["field"] == "limit"
    assert (await client.get("/alerts", params={"cursor": "garbage!"})).status == 400
    assert (await client.get("/alerts", params={"severity": "low"})).status == 400
    assert (await client.get("/alerts", params={"since": "yesterday"})).status == 400


async def test_health_ready_and_metrics(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/health")).status == 200
    ready = await client.get("/ready")
    assert ready.status == 200, await ready.text()
    await client.post("/transactions", json=VALID)
    text = await (await client.get("/metrics")).text()
    assert (
        'http_request_duration_seconds_count{method="POST",route="/transactions",status="202"}'
        in text
    )
    assert "gateway_kafka_publish_duration_seconds_count 1.0" in text
    document = await (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")


def insert_alerts(db: Any, count: int, rule: str = "zscore", z: float = 3.5) -> list[str]:
    """Alerts straight into the schema, one second apart; returns their ids, newest first."""
    ids = []
    for i in range(count):
        row = db.execute(
            "WITH t AS (INSERT INTO transactions (id, amount, currency, category, merchant,"
            " transaction_date, anomaly, severity, rule, z_score, scored_at)"
            " VALUES (gen_random_uuid(), 500, 'USD', 'food', 'Cafe', now(), true, 'high',"
            " %s, %s, now()) RETURNING id)"
            " INSERT INTO alerts (id, transaction_id, severity, rule, alert_message, z_score,"
            " baseline_id, created_at)"
            " SELECT gen_random_uuid(), t.id, 'high', %s, 'Amount exceeds 3σ baseline',"
            " %s, gen_random_uuid(), now() - make_interval(secs => %s) FROM t RETURNING id",
            (rule, z, rule, z, count - i),
        ).fetchone()
        ids.append(str(row[0]))
    return ids[::-1]


async def test_a_tail_alert_reads_back_with_its_tail_probability(
    client: TestClient[Any, Any], db: Any
) -> None:
    """The detector stores the z-equivalent; the API gives p = 1 - Phi(z) beside it, and
    nothing for a rule whose z is a plain z-score."""
    (tail_id,) = insert_alerts(db, 1, rule="tail", z=3.5400837992061454)  # 1 in 5,000
    insert_alerts(db, 1)
    alerts = {a["id"]: a for a in await (await client.get("/alerts")).json()}
    tail = alerts.pop(tail_id)
    assert tail["tail_probability"] == pytest.approx(1 / 5000)
    assert [a["tail_probability"] for a in alerts.values()] == [None]
    stored = await (await client.get(f"/transactions/{tail['transaction_id']}")).json()
    assert stored["tail_probability"] == pytest.approx(1 / 5000)


async def test_alerts_are_newest_first_and_pages_follow_the_cursor(
    client: TestClient[Any, Any], db: Any
) -> None:
    newest_first = insert_alerts(db, 5)
    first = await client.get("/alerts", params={"limit": "2"})
    page = await first.json()
    assert [a["id"] for a in page] == newest_first[:2]
    assert set(page[0]) >= {"id", "transaction_id", "alert_message", "severity", "created_at"}
    # An alert arriving meanwhile does not shift the next page.
    insert_alerts(db, 1)
    second = await client.get(
        "/alerts", params={"limit": "2", "cursor": first.headers["X-Next-Cursor"]}
    )
    assert [a["id"] for a in await second.json()] == newest_first[2:4]
    third = await client.get(
        "/alerts", params={"limit": "2", "cursor": second.headers["X-Next-Cursor"]}
    )
    assert [a["id"] for a in await third.json()] == newest_first[4:]
    assert "X-Next-Cursor" not in third.headers


async def test_the_next_link_keeps_a_repeated_filter(client: TestClient[Any, Any], db: Any) -> None:
    # The Link header was built from a dict: severity=medium&severity=high became
    # severity=high, and page 2 read another filter than page 1.
    high = insert_alerts(db, 3)
    db.execute("UPDATE alerts SET severity = 'medium' WHERE id = %s", (high[1],))
    db.execute("UPDATE alerts SET severity = 'critical' WHERE id = %s", (high[2],))
    first = await client.get("/alerts?severity=medium&severity=high&limit=1")
    assert [a["id"] for a in await first.json()] == [high[0]]
    link = first.headers["Link"]
    assert link.startswith("</alerts?severity=medium&severity=high&limit=1&cursor=")
    second = await client.get(link[1 : link.index(">")])
    assert [a["id"] for a in await second.json()] == [high[1]]
    assert "Link" not in second.headers


async def test_a_number_too_long_to_convert_is_a_400(
    client: TestClient[Any, Any], isolated: Isolated
) -> None:
    body = b'{"amount": ' + b"9" * 5000 + b', "category": "a"}'
    response = await client.post(
        "/transactions", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert await published(isolated) == 0


@pytest.mark.parametrize("bad", ["", "flase", "yes", "1"])
async def test_wait_must_be_true_or_false(client: TestClient[Any, Any], bad: str) -> None:
    response = await client.post("/transactions", json=VALID, params={"wait": bad})
    assert response.status == 400
    assert (await response.json())["detail"][0]["field"] == "wait"
