"""`POST/GET/DELETE /webhooks` on the real database: admin only, the secret shown once, URLs
checked (never called) by the gateway."""

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import SCOPED_HEADERS, Isolated
from tests.integration.test_gateway import gateway_client

pytestmark = pytest.mark.integration
# Resolves without any DNS server: a literal public address (never called by the gateway).
PUBLIC_URL = "https://93.184.216.34/hooks/jalytics"


@pytest.fixture
async def client(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    async with gateway_client(isolated) as test_client:
        yield test_client


async def test_a_subscription_is_created_listed_without_its_secret_and_deleted(
    client: TestClient[Any, Any], db: psycopg.Connection[Any]
) -> None:
    created = await client.post(
        "/webhooks", json={"url": PUBLIC_URL, "min_severity": "high", "category": "travel"}
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    assert len(body["secret"]) >= 16
    assert created.headers["Location"] == f"/webhooks/{body['id']}"
    assert (body["url"], body["min_severity"], body["category"], body["merchant"]) == (
        PUBLIC_URL,
        "high",
        "travel",
        None,
    )
    stored = db.execute("SELECT secret, created_by FROM webhook_subscriptions").fetchone()
    assert stored == (body["secret"], "tests")

    given = await client.post("/webhooks", json={"url": PUBLIC_URL, "secret": "s" * 16})
    assert (await given.json())["secret"] == "s" * 16
    assert (await given.json())["min_severity"] == "critical"  # the default

    listed = await (await client.get("/webhooks")).json()
    assert [item["id"] for item in listed] == [body["id"], (await given.json())["id"]]
    assert all("secret" not in item for item in listed)

    assert (await client.delete(f"/webhooks/{body['id']}")).status == 204
    assert (await client.delete(f"/webhooks/{body['id']}")).status == 404
    assert [item["id"] for item in await (await client.get("/webhooks")).json()] == [
        (await given.json())["id"]
    ]
    # Ended, not erased: the row stays for its dead letters.
    assert db.execute("SELECT count(*) FROM webhook_subscriptions").fetchone() == (2,)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://10.0.0.7/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[fe80::1]/hook", "link-local"),
        ("ftp://93.184.216.34/hook", "only http and https"),
        ("https://user:pw@93.184.216.34/", "credentials"),
        ("http://no-such-host.invalid/", "does not resolve"),
    ],
)
async def test_an_internal_or_unusable_url_is_refused_with_422(
    client: TestClient[Any, Any], db: psycopg.Connection[Any], url: str, reason: str
) -> None:
    response = await client.post("/webhooks", json={"url": url})
    assert response.status == 422
    [detail] = (await response.json())["detail"]
    assert detail["field"] == "url"
    assert reason in detail["message"]
    assert db.execute("SELECT count(*) FROM webhook_subscriptions").fetchone() == (0,)


async def test_private_urls_are_accepted_when_allowed(isolated: Isolated) -> None:
    async with gateway_client(isolated, webhook_allow_private=True) as client:
        response = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert response.status == 201


async def test_bad_fields_are_named(client: TestClient[Any, Any]) -> None:
    for body, field in [
        ({"url": PUBLIC_URL, "secret": "short"}, "secret"),
        ({"url": PUBLIC_URL, "min_severity": "low"}, "min_severity"),
        ({"url": PUBLIC_URL, "extra": 1}, "extra"),
        ({}, "url"),
    ]:
        response = await client.post("/webhooks", json=body)
        assert response.status == 422, body
        assert (await response.json())["detail"][0]["field"] == field


async def test_only_an_admin_key_manages_webhooks(client: TestClient[Any, Any]) -> None:
    for scope in ("ingest", "read", "analyst"):
        headers = SCOPED_HEADERS[scope]
        assert (await client.get("/webhooks", headers=headers)).status == 403
        post = await client.post("/webhooks", json={"url": PUBLIC_URL}, headers=headers)
        assert post.status == 403
        delete = await client.delete(
            "/webhooks/00000000-0000-0000-0000-000000000000", headers=headers
        )
        assert delete.status == 403


async def test_a_replayed_creation_keeps_no_copy_of_the_secret(
    client: TestClient[Any, Any], db: psycopg.Connection[Any]
) -> None:
    """An Idempotency-Key retry answers the same subscription, but the secret is stored only
    in webhook_subscriptions: never in the kept answer, nor shown again."""
    body, headers = {"url": PUBLIC_URL, "secret": "s3cret-" + "x" * 20}, {"Idempotency-Key": "h1"}
    first = await client.post("/webhooks", json=body, headers=headers)
    again = await client.post("/webhooks", json=body, headers=headers)
    assert first.status == again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    created, replayed = await first.json(), await again.json()
    assert created["secret"] == body["secret"]
    assert replayed == created | {"secret": None}
    kept = db.execute("SELECT response::text FROM idempotency_keys").fetchall()
    assert len(kept) == 1 and body["secret"] not in kept[0][0]
