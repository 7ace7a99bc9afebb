"""The rest of the API on the real broker and database: batch, read-back, reversal,
idempotency, authentication, filters, and the OpenAPI document against the router."""

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ingest_gateway.app import create_app
from ingest_gateway.settings import GatewaySettings
from tests.conftest import AUTH_HEADERS, SCOPED_HEADERS, UNSCOPED_KEY, Isolated
from tests.integration.test_gateway import VALID, gateway_client, insert_alerts, published

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    async with gateway_client(isolated, verdict_wait_seconds=0, batch_max_items=5) as test_client:
        yield test_client


async def test_data_endpoints_need_a_valid_key_and_ops_endpoints_do_not(
    isolated: Isolated,
) -> None:
    settings = isolated.settings(GatewaySettings)
    async with TestClient(TestServer(create_app(settings, CollectorRegistry()))) as anonymous:
        assert (await anonymous.post("/transactions", json=VALID)).status == 401
        assert (await anonymous.get("/alerts")).status == 401
        wrong = {"Authorization": "Bearer not-the-key"}
        assert (await anonymous.get("/alerts", headers=wrong)).status == 401
        assert (await anonymous.get("/alerts", headers={"X-API-Key": "not-the-key"})).status == 401
        assert (await anonymous.get("/alerts", headers=AUTH_HEADERS)).status == 200
        for path in ("/health", "/metrics", "/openapi.json", "/ready"):
            assert (await anonymous.get(path)).status == 200, path
    assert await published(isolated) == 0


async def test_each_key_may_call_only_what_its_scopes_grant(isolated: Isolated) -> None:
    settings = isolated.settings(GatewaySettings, verdict_wait_seconds=0)
    async with TestClient(TestServer(create_app(settings, CollectorRegistry()))) as client:

        async def status(method: str, path: str, headers: dict[str, str]) -> int:
            body = VALID if method == "POST" else None
            response = await client.request(method, path, json=body, headers=headers)
            return response.status

        ingest, read = SCOPED_HEADERS["ingest"], SCOPED_HEADERS["read"]
        assert await status("POST", "/transactions", ingest) == 202
        refused = await client.get("/alerts", headers=ingest)
        assert refused.status == 403
        assert "'read' scope" in (await refused.json())["error"]
        assert await status("GET", "/alerts", read) == 200
        assert await status("POST", "/transactions", read) == 403
        # analyst implies read; it may not ingest.
        assert await status("GET", "/alerts", SCOPED_HEADERS["analyst"]) == 200
        assert await status("POST", "/transactions", SCOPED_HEADERS["analyst"]) == 403
        # A key configured before scopes existed keeps what it could do: ingest and read.
        legacy = {"X-API-Key": UNSCOPED_KEY}
        assert await status("GET", "/alerts", legacy) == 200
        assert await status("POST", "/transactions", legacy) == 202
    assert await published(isolated) == 2


async def test_a_batch_reports_per_item_and_publishes_only_the_good_ones(
    client: TestClient[Any, Any], isolated: Isolated
) -> None:
    items = [VALID, {**VALID, "amount": -1}, {**VALID, "merchant": "Other"}, "nonsense"]
    response = await client.post("/transactions/batch", json={"transactions": items})
    assert response.status == 200
    body = await response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert [r["status"] for r in body["results"]] == [202, 422, 202, 422]
    assert body["results"][1]["detail"][0]["field"] == "transactions.1.amount"
    assert await published(isolated) == 2

    too_many = await client.post("/transactions/batch", json={"transactions": [VALID] * 6})
    assert too_many.status == 422
    empty = await client.post("/transactions/batch", json={"transactions": []})
    assert empty.status == 422


async def test_the_same_idempotency_key_replays_and_a_different_body_conflicts(
    client: TestClient[Any, Any], isolated: Isolated
) -> None:
    key = {"Idempotency-Key": f"order-{uuid4()}"}
    first = await client.post("/transactions", json=VALID, headers=key)
    again = await client.post("/transactions", json=VALID, headers=key)
    assert first.status == again.status == 202
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await published(isolated) == 1
    other = await client.post("/transactions", json={**VALID, "amount": 5}, headers=key)
    assert other.status == 409
    assert await published(isolated) == 1
    # A rejected request does not burn its key: fixed, the same key works.
    bad_key = {"Idempotency-Key": f"order-{uuid4()}"}
    assert (
        await client.post("/transactions", json={**VALID, "amount": -1}, headers=bad_key)
    ).status == 422
    assert (
        await client.post("/transactions", json={**VALID, "amount": -1}, headers=bad_key)
    ).status == 422


async def test_a_stored_transaction_reads_back_with_its_verdict_and_reverses_once(
    client: TestClient[Any, Any], db: Any
) -> None:
    alert_ids = insert_alerts(db, 1)
    txn_id = str(
        db.execute("SELECT transaction_id FROM alerts WHERE id = %s", (alert_ids[0],)).fetchone()[0]
    )
    read = await client.get(f"/transactions/{txn_id}")
    assert read.status == 200
    stored = await read.json()
    assert stored["anomaly"] is True
    assert stored["severity"] == "high"
    assert stored["alert_id"] == alert_ids[0]
    assert stored["amount"] == "500.0000"
    assert stored["reversed_at"] is None

    assert (await client.get(f"/transactions/{uuid4()}")).status == 404
    assert (await client.get("/transactions/not-a-uuid")).status == 404

    no_key = await client.post(f"/transactions/{txn_id}/reversal", json={"reason": "refund"})
    assert no_key.status == 400
    key = {"Idempotency-Key": "refund-1"}
    first = await client.post(
        f"/transactions/{txn_id}/reversal", json={"reason": "refund"}, headers=key
    )
    retry = await client.post(
        f"/transactions/{txn_id}/reversal", json={"reason": "refund"}, headers=key
    )
    assert first.status == retry.status == 201
    assert (await first.json())["id"] == (await retry.json())["id"]
    another = await client.post(
        f"/transactions/{txn_id}/reversal",
        json={"reason": "refund"},
        headers={"Idempotency-Key": "refund-2"},
    )
    assert another.status == 409
    assert db.execute("SELECT count(*) FROM reversals").fetchone() == (1,)
    assert (await (await client.get(f"/transactions/{txn_id}")).json())["reversed_at"]
    unknown = await client.post(
        f"/transactions/{uuid4()}/reversal", headers={"Idempotency-Key": "refund-3"}
    )
    assert unknown.status == 404


async def test_alerts_filter_by_severity_category_merchant_and_time(
    client: TestClient[Any, Any], db: Any
) -> None:
    ids = insert_alerts(db, 3)
    db.execute("UPDATE alerts SET severity = 'critical' WHERE id = %s", (ids[0],))
    db.execute(
        "UPDATE transactions SET merchant = 'Ritz', category = 'travel' WHERE id ="
        " (SELECT transaction_id FROM alerts WHERE id = %s)",
        (ids[1],),
    )

    async def listed(**params: str) -> list[str]:
        response = await client.get("/alerts", params=params)
        assert response.status == 200, await response.text()
        return [a["id"] for a in await response.json()]

    assert await listed(severity="critical") == [ids[0]]
    assert await listed(severity="high,critical") == ids
    assert await listed(merchant="Ritz") == [ids[1]]
    assert await listed(category="travel") == [ids[1]]
    newest = db.execute("SELECT created_at FROM alerts WHERE id = %s", (ids[0],)).fetchone()[0]
    assert await listed(since=newest.isoformat()) == [ids[0]]
    assert await listed(until=newest.isoformat()) == ids[1:]


async def test_the_openapi_document_describes_exactly_the_routes(
    client: TestClient[Any, Any],
) -> None:
    document = await (await client.get("/openapi.json")).json()
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    routed = {
        (route.resource.canonical, route.method)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        # The analyst inbox's pages are not API (ingest_gateway/ui/): none in the document.
        and not route.resource.canonical.startswith("/ui")
    }
    assert documented == routed
    assert not any(path.startswith("/ui") for path in document["paths"])
    assert "TransactionIn" in document["components"]["schemas"]
