"""Poison written straight to `transactions` among good records: the detector never
crashes, every bad record lands on `transactions.dlq` with its reason, the rest is stored."""

import json
import random
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from benchmarks.throughput import produce
from schemas.records import DLQ_MESSAGE, DLQ_REASON
from shared.kafka import make_producer
from tests.conftest import Isolated
from tests.faults.test_detector_crashes import COUNT, persisted, start_detector
from tests.kafka_helpers import read_all
from tests.processes import wait_for

pytestmark = pytest.mark.faults

GOOD = {
    "amount": "12.50",
    "category": "food",
    "merchant": "Cafe",
    "transaction_date": "2026-01-01T10:00:00Z",
}
POISON: list[tuple[bytes | None, str]] = [
    (b"{not json", "malformed_json"),
    (b"", "empty_value"),
    (None, "empty_value"),
    (json.dumps({**GOOD, "id": str(uuid4()), "schema_version": 7}).encode(), "unsupported_version"),
    (json.dumps({**GOOD, "id": str(uuid4()), "amount": "1e400"}).encode(), "invalid_schema"),
    (
        # Python will not convert an integer of 5,000 digits: this one used to crash the worker.
        json.dumps({**GOOD, "id": str(uuid4()), "amount": 12}).replace("12", "9" * 5000).encode(),
        "malformed_json",
    ),
    (json.dumps({**GOOD, "id": str(uuid4()), "category": ["food"]}).encode(), "invalid_schema"),
    (json.dumps({**GOOD, "id": "not-a-uuid"}).encode(), "invalid_schema"),
    (json.dumps({**GOOD, "id": str(uuid4()), "merchant": "Caf\u0000e"}).encode(), "invalid_schema"),
    ((b"[" * 5000) + (b"]" * 5000), "malformed_json"),
    (b"\xff\xfe\x00garbage", "malformed_json"),
    # Valid, but refused by PostgreSQL (the constraint the test adds): its whole batch failed
    # at every replay, and the detector restarted on it for good.
    (json.dumps({**GOOD, "id": str(uuid4()), "merchant": "Refused"}).encode(), "rejected_by_store"),
]
# A value the schema lets through and PostgreSQL refuses (an offset over ±15:59 was one).
REFUSING_CONSTRAINT = (
    "ALTER TABLE transactions ADD CONSTRAINT test_refused CHECK (merchant <> 'Refused')"
)


async def test_poison_goes_to_the_dead_letter_topic_and_the_stream_goes_on(
    isolated: Isolated, db: Any, tmp_path: Path
) -> None:
    env = isolated.worker_env("detector") | {"CONSUMER_GROUP": f"faults-{uuid4().hex[:8]}"}
    db.execute(REFUSING_CONSTRAINT)
    await produce(env, COUNT)
    producer = make_producer(env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    rng = random.Random(5)
    for value, _ in POISON:
        await producer.send(
            env["TOPIC_TRANSACTIONS"], key=f"poison-{rng.random()}".encode(), value=value
        )
    await producer.stop()
    worker, health = start_detector(env, tmp_path / "detector.log")
    worker.wait_healthy(health)
    try:
        wait_for(lambda: persisted(db) >= COUNT, 240, "the good records to be stored")
        dead = await read_all(env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("dlq"), timeout=30)
        worker.assert_running()
    finally:
        worker.stop()
    reasons = sorted(dict(r.headers)[DLQ_REASON].decode() for r in dead)
    print(
        f"\n| sent | poison | persisted | DLQ |\n| {COUNT + len(POISON)} | {len(POISON)} "
        f"| {persisted(db)} | {len(dead)} |"
    )
    assert persisted(db) == COUNT
    assert reasons == sorted(reason for _, reason in POISON)
    assert all(dict(r.headers)[DLQ_MESSAGE] for r in dead)
