"""Suppression rules on the real database and broker: managed through the API, made from an
`expected` alert in one call, and applied by the detector to the alerts it stores and
publishes. Also the resolution counts a backtest reads."""

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from aiohttp.test_utils import TestClient

from detector_worker.metrics import DetectorMetrics
from detector_worker.pipeline import DetectorPipeline
from schemas import Transaction, encode_model
from tests.conftest import SCOPED_HEADERS, Isolated
from tests.integration.test_alert_workflow import patch
from tests.integration.test_detector_pipeline import NOW, as_record, built, new_producer
from tests.integration.test_gateway import gateway_client, insert_alerts
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration

ANALYST = SCOPED_HEADERS["analyst"]
RULE = {"merchant": "Cafe", "reason": "seasonal sale", "duration_hours": 24}


@pytest.fixture
async def client(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    async with gateway_client(isolated, verdict_wait_seconds=0) as test_client:
        yield test_client


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def create(client: TestClient[Any, Any], body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.post("/suppressions", json=body, headers=ANALYST)
    return response.status, await response.json()


async def listed(client: TestClient[Any, Any], **params: str) -> list[str]:
    response = await client.get("/suppressions", params=params, headers=SCOPED_HEADERS["read"])
    assert response.status == 200
    return [rule["id"] for rule in await response.json()]


async def test_a_rule_is_created_listed_and_expired(client: TestClient[Any, Any], db: Any) -> None:
    status, rule = await create(
        client,
        {
            "category": "food",
            "currency": "USD",
            "min_amount": "100.50",
            "max_amount": 900,
            "reason": "catering week",
            "expires_at": later(days=2),
        },
    )
    assert status == 201, rule
    assert (rule["min_amount"], rule["max_amount"]) == ("100.5000", "900.0000")
    assert (rule["created_by"], rule["active"], rule["source_alert_id"]) == (
        "tests-analyst",
        True,
        None,
    )
    assert await listed(client) == [rule["id"]]

    expired = await client.delete(f"/suppressions/{rule['id']}", headers=ANALYST)
    assert expired.status == 200
    body = await expired.json()
    assert body["active"] is False
    # Expiring again changes nothing; the row stays for the audit trail.
    again = await (await client.delete(f"/suppressions/{rule['id']}", headers=ANALYST)).json()
    assert again["expires_at"] == body["expires_at"]
    assert await listed(client) == []
    assert await listed(client, include_expired="true") == [rule["id"]]
    assert db.execute("SELECT count(*) FROM suppressions").fetchone() == (1,)
    unknown = await client.delete(f"/suppressions/{uuid4()}", headers=ANALYST)
    assert unknown.status == 404


async def test_rules_are_listed_a_page_at_a_time_each_once_newest_first(
    client: TestClient[Any, Any],
) -> None:
    created = [(await create(client, {**RULE, "merchant": f"m{i}"}))[1]["id"] for i in range(5)]
    expired = created[1]
    assert (await client.delete(f"/suppressions/{expired}", headers=ANALYST)).status == 200

    async def pages(url: str) -> list[list[str]]:
        seen: list[list[str]] = []
        while url:
            response = await client.get(url, headers=SCOPED_HEADERS["read"])
            assert response.status == 200
            seen.append([rule["id"] for rule in await response.json()])
            link = response.headers.get("Link", "")
            assert bool(link) == ("X-Next-Cursor" in response.headers)
            url = link[1 : link.index(">")] if link else ""
        return seen

    newest_first = created[::-1]
    assert await pages("/suppressions?include_expired=true&limit=2") == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
    ]
    # The filter is carried by the next page's link; a page exactly full has no next one.
    active = [rule for rule in newest_first if rule != expired]
    assert await pages("/suppressions?limit=2") == [active[0:2], active[2:4]]
    assert await pages("/suppressions") == [active]
    for query in ("limit=0", "limit=501", "limit=x", "cursor=bm90LWEtY3Vyc29y"):
        response = await client.get(f"/suppressions?{query}", headers=SCOPED_HEADERS["read"])
        assert response.status == 400, query


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "everything", "duration_hours": 1}, "(body)"),
        ({"currency": "USD", "reason": "all dollars", "duration_hours": 1}, "(body)"),
        ({**RULE, "duration_hours": None, "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({**RULE, "duration_hours": None, "expires_at": later(days=400)}, "expires_at"),
        ({**RULE, "duration_hours": 10_000}, "duration_hours"),
        ({**RULE, "expires_at": later(days=1)}, "(body)"),
        ({**RULE, "min_amount": "5", "max_amount": "1"}, "(body)"),
        ({**RULE, "min_amount": "-1"}, "min_amount"),
        ({**RULE, "min_amount": "1.23456"}, "min_amount"),
        ({**RULE, "reason": ""}, "reason"),
        ({**RULE, "merchant": "nul\x00"}, "merchant"),
        ({**RULE, "currency": "usd"}, "currency"),
        ({**RULE, "surprise": 1}, "surprise"),
    ],
)
async def test_bad_rules_are_refused_naming_the_field(
    client: TestClient[Any, Any], db: Any, body: dict[str, Any], field: str
) -> None:
    status, error = await create(client, body)
    assert status == 422, error
    assert field in [item["field"] for item in error["detail"]]
    assert db.execute("SELECT count(*) FROM suppressions").fetchone() == (0,)


@pytest.mark.parametrize(
    "reason",
    ["r" * 2000, "مرحبا \u202eevil\u202c 🧾", "r" * 2048, "nul \x00", "\ud800", "line\nbreak"],
)
async def test_hostile_reasons_are_stored_as_text_or_refused_cleanly(
    client: TestClient[Any, Any], reason: str
) -> None:
    status, answer = await create(client, {**RULE, "reason": reason})
    assert status in (201, 400, 422), answer
    if status == 201:
        assert answer["reason"] == reason
        assert answer["id"] in await listed(client)


async def test_only_analysts_manage_rules(client: TestClient[Any, Any]) -> None:
    for scope in ("ingest", "read"):
        response = await client.post("/suppressions", json=RULE, headers=SCOPED_HEADERS[scope])
        assert response.status == 403
    _, rule = await create(client, RULE)
    refused = await client.delete(f"/suppressions/{rule['id']}", headers=SCOPED_HEADERS["read"])
    assert refused.status == 403
    assert (await client.get("/suppressions", headers=SCOPED_HEADERS["ingest"])).status == 403


async def test_resolving_expected_with_suppress_creates_the_rule_in_the_same_change(
    client: TestClient[Any, Any], db: Any
) -> None:
    (alert_id,) = insert_alerts(db, 1)
    body = {
        "status": "resolved",
        "resolution": "expected",
        "note": "annual gala",
        "suppress": {"reason": "gala week", "duration_hours": 72},
    }
    status, alert = await patch(client, alert_id, body)
    assert status == 200, alert
    assert (alert["status"], alert["resolution"]) == ("resolved", "expected")
    rules = await (await client.get("/suppressions")).json()
    assert len(rules) == 1
    rule = rules[0]
    assert (rule["category"], rule["merchant"], rule["currency"]) == ("food", "Cafe", "USD")
    assert (rule["min_amount"], rule["max_amount"]) == (None, None)
    assert (rule["source_alert_id"], rule["reason"]) == (alert_id, "gala week")
    # A rule in the past refuses the whole change: nothing resolved, no rule.
    (other,) = insert_alerts(db, 1)
    past = {**body, "suppress": {"reason": "r", "expires_at": "2020-01-01T00:00:00Z"}}
    status, error = await patch(client, other, past)
    assert (status, error["detail"][0]["field"]) == (422, "suppress.expires_at")
    assert db.execute("SELECT count(*) FROM suppressions").fetchone() == (1,)
    assert db.execute("SELECT status FROM alerts WHERE id = %s", (other,)).fetchone() == ("open",)


async def test_resolutions_are_counted_per_scope_and_rule_and_in_metrics(
    client: TestClient[Any, Any], db: Any
) -> None:
    zscore = insert_alerts(db, 3)
    (tail,) = insert_alerts(db, 1, rule="tail")
    for alert_id, resolution in zip(
        [*zscore, tail],
        ["false_positive", "false_positive", "confirmed_fraud", "expected"],
        strict=True,
    ):
        status, _ = await patch(client, alert_id, {"status": "resolved", "resolution": resolution})
        assert status == 200
    # Reopened: no longer counted by the API (the counter keeps every resolution made).
    await patch(client, zscore[2], {"status": "open"})
    counts = await (await client.get("/alerts/resolutions")).json()
    assert counts == [
        {
            "category": "food",
            "merchant": "Cafe",
            "rule": "tail",
            "confirmed_fraud": 0,
            "false_positive": 0,
            "expected": 1,
        },
        {
            "category": "food",
            "merchant": "Cafe",
            "rule": "zscore",
            "confirmed_fraud": 0,
            "false_positive": 2,
            "expected": 0,
        },
    ]
    metrics = await (await client.get("/metrics")).text()
    for line in (
        'jalytics_alert_resolutions_total{resolution="false_positive",rule="zscore"} 2.0',
        'jalytics_alert_resolutions_total{resolution="confirmed_fraud",rule="zscore"} 1.0',
        'jalytics_alert_resolutions_total{resolution="expected",rule="tail"} 1.0',
    ):
        assert line in metrics


def spike(merchant: str, amount: str = "500.00") -> Transaction:
    return Transaction(
        id=uuid4(),
        amount=Decimal(amount),
        category="food",
        merchant=merchant,
        transaction_date=NOW,
        received_at=NOW,
    )


def add_rule(db: Any, expires_at: datetime, **scope: object) -> str:
    row = db.execute(
        "INSERT INTO suppressions (id, category, merchant, currency, min_amount, max_amount,"
        " reason, expires_at, created_by) VALUES (gen_random_uuid(), %(category)s,"
        " %(merchant)s, %(currency)s, %(min_amount)s, %(max_amount)s, 'test', %(expires_at)s,"
        " 'tests') RETURNING id",
        {
            "category": None,
            "merchant": None,
            "currency": None,
            "min_amount": None,
            "max_amount": None,
            "expires_at": expires_at,
        }
        | scope,
    ).fetchone()
    return str(row[0])


@pytest.fixture
async def pipeline(isolated: Isolated) -> AsyncIterator[tuple[DetectorPipeline, DetectorMetrics]]:
    async with built(isolated, new_producer(isolated)) as ready:
        yield ready


async def test_the_detector_stores_and_publishes_matching_alerts_suppressed(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    process, metrics = pipeline
    rule = add_rule(
        db, NOW + timedelta(days=1), merchant="Cafe", currency="USD", max_amount=Decimal(1000)
    )
    add_rule(db, NOW - timedelta(seconds=1), merchant="Diner")  # expired before the alerts
    add_rule(db, NOW + timedelta(days=1), merchant="Bistro", min_amount=Decimal(10_000))
    matching, too_big = spike("Cafe"), spike("Cafe", "5000.00")
    expired, below_range = spike("Diner"), spike("Bistro")
    batch = (matching, too_big, expired, below_range)
    await process.process([as_record(encode_model(t), i) for i, t in enumerate(batch)])

    stored = dict(
        db.execute(
            "SELECT transaction_id, suppression_id::text FROM alerts WHERE suppressed"
        ).fetchall()
    )
    assert stored == {matching.id: rule}
    assert db.execute("SELECT count(*) FROM alerts WHERE NOT suppressed").fetchone() == (3,)
    records = await read_all(isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("alerts"))
    published = {
        json.loads(r.value)["transaction_id"]: (
            json.loads(r.value)["suppressed"],
            json.loads(r.value)["suppression_id"],
        )
        for r in records
    }
    assert published == {
        str(matching.id): (True, rule),
        str(too_big.id): (False, None),
        str(expired.id): (False, None),
        str(below_range.id): (False, None),
    }
    (family,) = metrics.anomalies.collect()
    counted = {s.labels["suppressed"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert counted == {"true": 1, "false": 3}


async def test_a_replayed_batch_publishes_the_flag_it_stored(
    pipeline: tuple[DetectorPipeline, DetectorMetrics], isolated: Isolated, db: Any
) -> None:
    """At least once: the replay of a batch publishes its alerts again, marked as the first
    attempt stored them, whatever the rules say by then."""
    process, _ = pipeline
    before, after = spike("Cafe"), spike("Cafe")
    rule = add_rule(db, NOW + timedelta(days=1), category="food")
    await process.process([as_record(encode_model(before), 0)])
    # A rule made between an attempt and its replay does not mark what is stored already.
    unmarked = [as_record(encode_model(after), 1)]
    db.execute("UPDATE suppressions SET expires_at = %s", (NOW,))
    await process.process(unmarked)
    db.execute("UPDATE suppressions SET expires_at = %s", (NOW + timedelta(days=1),))
    await process.process([as_record(encode_model(before), 0)])
    await process.process(unmarked)
    records = await read_all(isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("alerts"))
    # Partitions interleave arbitrarily: count the records of each (transaction, mark).
    published = Counter(
        (json.loads(r.value)["transaction_id"], json.loads(r.value)["suppression_id"])
        for r in records
    )
    assert published == {(str(before.id), rule): 2, (str(after.id), None): 2}
    stored = db.execute("SELECT suppression_id::text FROM alerts ORDER BY suppressed").fetchall()
    assert stored == [(None,), (rule,)]
