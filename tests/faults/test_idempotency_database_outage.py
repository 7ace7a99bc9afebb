"""Issue 13, F6: PostgreSQL goes away while a request with an Idempotency-Key is running,
after its key was claimed and its transaction published, before its answer is kept. The
client must hear the truth (the transaction was accepted), and once PostgreSQL is back the
same request must not be refused as "in progress" for the key's whole lifetime. The
database is the test's own (ops/postgres.sh, private port), so it can be stopped."""

import asyncio
import json
import time
from uuid import uuid4

import pytest
from aiohttp import ClientResponse

from shared.migrations import apply_migrations
from tests.conftest import Isolated
from tests.faults.conftest import PrivatePostgres
from tests.integration.test_gateway import VALID, gateway_client
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.faults

VERDICT_WAIT = 3.0  # no detector runs: the request waits this long, then answers 202


async def test_f6_a_key_whose_answer_was_not_kept_is_usable_again(
    isolated: Isolated, private_postgres: PrivatePostgres
) -> None:
    url = private_postgres.url()
    apply_migrations(url, isolated.schema)
    body, key = json.dumps(VALID).encode(), f"order-{uuid4()}"
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    async with gateway_client(
        isolated,
        database_url=url,
        verdict_wait_seconds=VERDICT_WAIT,
        idempotency_claim_timeout_seconds=1,
    ) as client:
        first = asyncio.create_task(client.post("/transactions", data=body, headers=headers))
        await asyncio.sleep(1)  # claimed and published; waiting for a verdict
        await asyncio.to_thread(private_postgres.run, "stop")
        answer = await first
        # Published, so accepted: not a 503 that says to retry something already recorded.
        assert answer.status == 202, await answer.text()
        txn_id = (await answer.json())["id"]
        await asyncio.to_thread(private_postgres.run, "start")

        async def retry() -> ClientResponse:
            deadline = time.monotonic() + 60
            while True:
                reply = await client.post("/transactions", data=body, headers=headers)
                if reply.status < 300 or time.monotonic() > deadline:
                    return reply
                await asyncio.sleep(0.5)

        again = await retry()
        assert again.status == 202, await again.text()  # not 409 "in progress" for 24 h
        assert (await again.json())["id"] == txn_id
    records = await read_all(
        isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("transactions")
    )
    assert {record.key.decode() for record in records} == {txn_id}
