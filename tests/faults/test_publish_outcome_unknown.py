"""Issue 13, F1: a 503 after the publish timeout must tell the truth. The broker (the test's
own, so it can be stopped) goes away while a payment is posted; the record may stay in the
producer's buffer and land once the broker is back. A client that retries exactly as the 503
says must not book the payment twice: the detector, run end to end, stores it once."""

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from schemas import Transaction
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import Isolated
from tests.faults.conftest import PrivateKafka
from tests.faults.test_detector_crashes import start_detector
from tests.integration.test_gateway import VALID, gateway_client
from tests.kafka_helpers import read_all
from tests.processes import wait_for

pytestmark = pytest.mark.faults

PAYMENT = {**VALID, "merchant": "F1 Outage Shop"}


async def retry_as_told(client: TestClient[Any, Any], told: dict[str, Any]) -> ClientResponse:
    """What a client does with a 503: the same body again, with the Idempotency-Key the
    answer names when it names one; until the gateway answers something else."""
    headers = {"Idempotency-Key": told["idempotency_key"]} if "idempotency_key" in told else {}
    deadline = time.monotonic() + 90
    while True:
        reply = await client.post("/transactions?wait=false", json=PAYMENT, headers=headers)
        if reply.status != 503 or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(1)


async def payment_ids_on_topic(bootstrap: str, topic: str) -> list[str]:
    """The id of each record of the payment (twice the same when the first landed late)."""
    records = [Transaction.model_validate_json(r.value) for r in await read_all(bootstrap, topic)]
    return [str(txn.id) for txn in records if txn.merchant == PAYMENT["merchant"]]


async def test_f1_a_retry_after_an_unknown_outcome_books_the_payment_once(
    isolated: Isolated, private_kafka: PrivateKafka, db: Any, tmp_path: Path
) -> None:
    bootstrap, topic = private_kafka.bootstrap, isolated.topic("transactions")
    await ensure_topics(bootstrap, project_topics(isolated.settings(CommonSettings)))
    async with gateway_client(
        isolated,
        kafka_bootstrap_servers=bootstrap,
        publish_timeout_seconds=2,
        verdict_wait_seconds=0,
    ) as client:
        assert (await client.post("/transactions?wait=false", json=VALID)).status == 202
        await asyncio.to_thread(private_kafka.run, "stop")
        unknown = await client.post("/transactions?wait=false", json=PAYMENT)
        assert unknown.status == 503
        told = await unknown.json()
        await asyncio.to_thread(private_kafka.run, "start")
        retried = await retry_as_told(client, told)
        assert retried.status == 202, await retried.text()
        txn_id = (await retried.json())["id"]

    detector, health = start_detector(
        isolated.worker_env("detector")
        | {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CONSUMER_GROUP": f"f1-{uuid4().hex[:8]}"},
        tmp_path / "detector.log",
    )
    try:
        detector.wait_healthy(health)
        published = await payment_ids_on_topic(bootstrap, topic)

        def stored() -> set[str]:
            rows = db.execute(
                "SELECT id FROM transactions WHERE merchant = %s", (PAYMENT["merchant"],)
            )
            return {str(row[0]) for row in rows.fetchall()}

        wait_for(lambda: stored() >= set(published), 120, "the detector to store the payment")
        detector.assert_running()
    finally:
        detector.stop()
    print(f"\nF1: records of the payment {published}; stored {sorted(stored())}")
    assert len(stored()) == 1, "the retry booked the payment twice"
    # The answer said what it knew: the id, that the outcome is unknown, the key to retry with.
    assert told["outcome"] == "unknown"
    assert told["transaction_id"] == unknown.headers["X-Transaction-Id"] == txn_id
    assert told["idempotency_key"] == unknown.headers["Idempotency-Key"]
    assert stored() == {txn_id}
