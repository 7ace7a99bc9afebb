"""PostgreSQL going silent while the gateway writes (the alert workflow's PATCH, creating and
ending suppressions, reversals, webhooks, claiming an Idempotency-Key): each write answers 503
within DATABASE_TIMEOUT_SECONDS, commits nothing, and writes work again once the database
answers. They waited forever.

The gateway and its relay are test_silent_database's fixtures."""

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest_gateway.context import POOL
from tests.conftest import Isolated
from tests.faults.test_silent_database import TIMEOUT, SilenceableRelay, client, relay
from tests.integration.test_gateway import VALID, insert_alerts

pytestmark = pytest.mark.faults
__all__ = ["client", "relay"]  # fixtures, used by name

RULE = {"category": "food", "reason": "a promotion", "duration_hours": 2}


def key_for(path: str) -> dict[str, str]:
    """An Idempotency-Key for the POSTs that take one (a reversal needs it): claiming it is
    a write too. One key a path, the same at every attempt."""
    if path.startswith("/transactions"):
        return {"Idempotency-Key": f"once-{path.count('/')}"}
    return {}


async def timed(
    client: TestClient[Any, Any], method: str, path: str, body: object = None
) -> tuple[int, float]:
    started = time.monotonic()
    response = await client.request(method, path, json=body, headers=key_for(path))
    await response.read()
    return response.status, time.monotonic() - started


async def test_writes_to_a_silent_database_are_a_503_in_time_and_recover(
    client: TestClient[Any, Any], relay: SilenceableRelay, isolated: Isolated, db: Any
) -> None:
    (alert_id,) = insert_alerts(db, 1)
    (transaction_id,) = db.execute("SELECT transaction_id FROM alerts").fetchone()
    created = await client.post("/suppressions", json=RULE)
    assert created.status == 201
    rule_id = (await created.json())["id"]
    writes = [
        ("PATCH", f"/alerts/{alert_id}", {"status": "acknowledged", "note": "on it"}),
        ("POST", "/suppressions", RULE),
        ("DELETE", f"/suppressions/{rule_id}", None),
        ("POST", f"/transactions/{transaction_id}/reversal", {"reason": "refunded"}),
        ("POST", "/transactions", VALID),
        ("POST", "/webhooks", {"url": "https://93.184.216.34/hooks/jalytics"}),
    ]
    # A connection in the pool for each write alone below (the pool grows on demand).
    pool = client.app[POOL]
    async with asyncio.timeout(10):
        while pool.get_stats()["pool_size"] < len(writes):
            await asyncio.gather(*(client.get("/suppressions") for _ in range(2 * len(writes))))
    relay.silence()
    async with asyncio.timeout(4 * TIMEOUT + 5):  # they waited for good
        # One at a time, each on a silent connection of the pool; then more at once than the
        # pool has connections: each waits on a silent one or on the pool.
        answers = [await timed(client, *write) for write in writes]
        answers += await asyncio.gather(*(timed(client, *write) for write in writes * 4))
    for status, seconds in answers:
        assert status == 503
        assert seconds < TIMEOUT + 1.0
    relay.speak()

    deadline = time.monotonic() + 30
    while (await client.get("/suppressions")).status != 200:
        assert time.monotonic() < deadline, "the gateway did not come back"
        await asyncio.sleep(0.5)
    # Nothing of the silent writes was committed (no more than their BEGIN was sent, and
    # the connections carrying them were closed).
    assert db.execute("SELECT count(*) FROM suppressions").fetchone() == (1,)
    assert db.execute("SELECT status FROM alerts").fetchone() == ("open",)
    for table in ("reversals", "idempotency_keys", "webhook_subscriptions"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    for method, path, body in writes:
        response = await client.request(method, path, json=body, headers=key_for(path))
        assert response.status in (200, 201, 202), await response.text()
