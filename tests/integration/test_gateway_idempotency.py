"""Idempotency-Key semantics under expiry, dead requests and transient answers (issue 13:
F4, F6, F7), on the real broker and database."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiohttp.test_utils import TestClient

from ingest_gateway.context import IDEMPOTENCY
from ingest_gateway.idempotency import Claimed, request_fingerprint
from ingest_gateway.transactions import transaction_id
from tests.conftest import Isolated
from tests.integration.test_gateway import VALID, gateway_client, insert_alerts
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration

CALLER = "tests"  # the name the fixtures give the API key
CLAIM_TIMEOUT = 1.0
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    overrides = {"verdict_wait_seconds": 0, "idempotency_claim_timeout_seconds": CLAIM_TIMEOUT}
    async with gateway_client(isolated, **overrides) as test_client:
        yield test_client


async def published_ids(isolated: Isolated) -> list[str]:
    records = await read_all(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("transactions")
    )
    return [record.key.decode() for record in records]


async def claim_and_die(
    client: TestClient[Any, Any], key: str, method_path: str, body: bytes
) -> None:
    """The state a request leaves when it dies after claiming its key (its process killed,
    or PostgreSQL gone before the answer was kept): the key "in progress", no answer."""
    fingerprint = request_fingerprint(method_path, body)
    store = client.app[IDEMPOTENCY]
    claimed = await store.claim(CALLER, key, method_path, fingerprint, datetime.now(UTC))
    assert isinstance(claimed, Claimed)


async def test_f4_a_key_reused_after_its_ttl_with_a_new_body_is_a_new_transaction(
    client: TestClient[Any, Any], isolated: Isolated, db: Any
) -> None:
    key = {"Idempotency-Key": f"order-{uuid4()}"}
    first = await client.post("/transactions", json=VALID, headers=key)
    assert first.status == 202
    first_id = (await first.json())["id"]
    # The key's record outlived IDEMPOTENCY_TTL_HOURS and is expired.
    db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")

    other = await client.post("/transactions", json={**VALID, "amount": 5}, headers=key)
    assert other.status == 202
    other_id = (await other.json())["id"]
    # Not the old id, which the detector would drop as a replay while the client holds a 2xx.
    assert other_id != first_id
    assert other.headers["X-Transaction-Id"] == other_id
    assert sorted(await published_ids(isolated)) == sorted([first_id, other_id])

    # The first body again after expiry: the same transaction, so stored once, not lost.
    db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    same = await client.post("/transactions", json=VALID, headers=key)
    assert same.status == 202
    assert (await same.json())["id"] == first_id


async def test_f6_a_key_whose_request_died_is_usable_again_after_the_claim_timeout(
    client: TestClient[Any, Any], isolated: Isolated
) -> None:
    key, body = f"order-{uuid4()}", json.dumps(VALID).encode()
    await claim_and_die(client, key, "POST /transactions", body)
    headers = {"Idempotency-Key": key, **JSON}
    assert (await client.post("/transactions", data=body, headers=headers)).status == 409

    await asyncio.sleep(CLAIM_TIMEOUT + 0.3)
    retry = await client.post("/transactions", data=body, headers=headers)
    assert retry.status == 202, await retry.text()
    # The id the dead request published under, if it got that far: the detector stores it once.
    expected = str(transaction_id(CALLER, key, body))
    assert (await retry.json())["id"] == expected
    replay = await client.post("/transactions", data=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["X-Transaction-Id"] == expected
    assert await published_ids(isolated) == [expected]


async def test_f6_a_dead_reversal_is_answered_with_the_reversal_it_stored(
    client: TestClient[Any, Any], db: Any
) -> None:
    alert_id = insert_alerts(db, 1)[0]
    (txn_id,) = db.execute(
        "SELECT transaction_id FROM alerts WHERE id = %s", (alert_id,)
    ).fetchone()
    key, body = "refund-died", json.dumps({"reason": "refund"}).encode()
    # The first request stored its reversal, then died before its answer was kept.
    (stored_id,) = db.execute(
        "INSERT INTO reversals (id, transaction_id, reason, idempotency_key, api_key)"
        " VALUES (gen_random_uuid(), %s, 'refund', %s, %s) RETURNING id",
        (txn_id, key, CALLER),
    ).fetchone()
    path = f"/transactions/{txn_id}/reversal"
    await claim_and_die(client, key, f"POST {path}", body)
    headers = {"Idempotency-Key": key, **JSON}
    assert (await client.post(path, data=body, headers=headers)).status == 409

    await asyncio.sleep(CLAIM_TIMEOUT + 0.3)
    retry = await client.post(path, data=body, headers=headers)
    assert retry.status == 201, await retry.text()
    assert UUID((await retry.json())["id"]) == stored_id
    # Another key still cannot reverse it a second time.
    other = await client.post(path, data=body, headers={"Idempotency-Key": "refund-other", **JSON})
    assert other.status == 409
    assert db.execute("SELECT count(*) FROM reversals").fetchone() == (1,)


async def test_f7_a_not_scored_yet_404_is_not_replayed_under_the_key(
    client: TestClient[Any, Any], db: Any
) -> None:
    txn_id = uuid4()
    path, key = f"/transactions/{txn_id}/reversal", {"Idempotency-Key": "refund-early"}
    early = await client.post(path, json={"reason": "refund"}, headers=key)
    assert early.status == 404  # the detector has not stored it yet
    db.execute(
        "INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,"
        " anomaly, scored_at) VALUES (%s, 10, 'USD', 'food', 'Cafe', now(), false, now())",
        (txn_id,),
    )
    retry = await client.post(path, json={"reason": "refund"}, headers=key)
    assert retry.status == 201, await retry.text()
    assert "Idempotent-Replayed" not in retry.headers


async def test_a_request_that_outlived_its_claim_neither_frees_nor_answers_for_the_next(
    client: TestClient[Any, Any], db: Any
) -> None:
    """A request still working past the claim timeout, whose key a retry has claimed since,
    ends: its release (a transient answer) or its stored answer must not touch the retry's
    claim (a third request would run beside the retry, or replay an answer the retry never
    gave)."""
    store, key, method_path = client.app[IDEMPOTENCY], f"slow-{uuid4()}", "POST /transactions"
    fingerprint = request_fingerprint(method_path, b"{}")
    first = await store.claim(CALLER, key, method_path, fingerprint, datetime.now(UTC))
    later = datetime.now(UTC) + timedelta(seconds=2 * CLAIM_TIMEOUT)
    retry = await store.claim(CALLER, key, method_path, fingerprint, later)
    assert isinstance(first, Claimed) and isinstance(retry, Claimed)
    assert retry.since != first.since  # the first's claim was taken over

    await store.release(CALLER, key, first)
    await store.store(CALLER, key, first, 201, {"from": "the first"}, {})
    row = db.execute(
        "SELECT status, created_at FROM idempotency_keys WHERE key = %s", (key,)
    ).fetchone()
    assert row == (None, retry.since)  # the retry's claim, untouched

    await store.release(CALLER, key, retry)
    assert db.execute(
        "SELECT count(*) FROM idempotency_keys WHERE key = %s", (key,)
    ).fetchone() == (0,)
