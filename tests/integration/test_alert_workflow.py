"""The alert workflow on the real database: an alert's detail, its status changes and their
history, optimistic concurrency, who may change it, and the inbox filters of GET /alerts."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import SCOPED_HEADERS, Isolated
from tests.integration.test_gateway import gateway_client, insert_alerts

pytestmark = pytest.mark.integration

ANALYST = SCOPED_HEADERS["analyst"]


@pytest.fixture
async def client(isolated: Isolated) -> AsyncIterator[TestClient[Any, Any]]:
    async with gateway_client(isolated, verdict_wait_seconds=0) as test_client:
        yield test_client


def judged_alert(db: Any) -> str:
    """One alert whose baseline is in baseline_history (with a tail); returns its id."""
    (baseline_id,) = db.execute(
        "INSERT INTO baseline_history (id, scope_kind, scope_name, currency, sample_count,"
        " mean, stddev, window_days, computed_at, tail) VALUES (gen_random_uuid(), 'merchant',"
        " 'Cafe', 'USD', 500, 42.5, 7.25, 30, now(), %s) RETURNING id",
        ('{"threshold": 60, "shape": 0.1}',),
    ).fetchone()
    (alert_id,) = insert_alerts(db, 1)
    db.execute("UPDATE alerts SET baseline_id = %s WHERE id = %s", (baseline_id, alert_id))
    return str(alert_id)


async def patch(
    client: TestClient[Any, Any], alert_id: str, body: Any, **headers: str
) -> tuple[int, Any]:
    response = await client.patch(f"/alerts/{alert_id}", json=body, headers=ANALYST | headers)
    return response.status, await response.json()


async def test_an_alert_reads_back_with_its_transaction_baseline_and_etag(
    client: TestClient[Any, Any], db: Any
) -> None:
    alert_id = judged_alert(db)
    response = await client.get(f"/alerts/{alert_id}")
    assert response.status == 200
    assert response.headers["ETag"] == '"0"'
    body = await response.json()
    assert (body["status"], body["resolution"], body["assignee"]) == ("open", None, None)
    assert (body["suppressed"], body["version"], body["history"]) == (False, 0, [])
    assert body["transaction"]["id"] == body["transaction_id"]
    assert body["transaction"]["amount"] == "500.0000"
    baseline = body["baseline"]
    assert (baseline["scope_name"], baseline["mean"], baseline["stddev"]) == ("Cafe", 42.5, 7.25)
    assert baseline["tail"] == {"threshold": 60, "shape": 0.1}
    # A baseline pruned from the history: the alert still reads, without it.
    (other,) = insert_alerts(db, 1)
    assert (await (await client.get(f"/alerts/{other}")).json())["baseline"] is None
    missing = await client.get("/alerts/00000000-0000-0000-0000-000000000000")
    assert missing.status == 404


async def test_acknowledge_then_resolve_keeps_each_change_with_its_actor_and_note(
    client: TestClient[Any, Any], db: Any
) -> None:
    alert_id = judged_alert(db)
    status, body = await patch(
        client, alert_id, {"status": "acknowledged", "assignee": "dana", "note": "looking"}
    )
    assert status == 200
    assert (body["status"], body["assignee"], body["version"]) == ("acknowledged", "dana", 2)
    status, body = await patch(
        client, alert_id, {"status": "resolved", "resolution": "false_positive"}
    )
    assert status == 200
    assert (body["status"], body["resolution"]) == ("resolved", "false_positive")
    history = [
        (h["field"], h["from_value"], h["to_value"], h["note"], h["actor"]) for h in body["history"]
    ]
    assert history == [
        ("status", "open", "acknowledged", "looking", "tests-analyst"),
        ("assignee", None, "dana", "looking", "tests-analyst"),
        ("status", "acknowledged", "resolved", None, "tests-analyst"),
        ("resolution", None, "false_positive", None, "tests-analyst"),
    ]
    stored = db.execute(
        "SELECT status, resolution, assignee, updated_at IS NOT NULL FROM alerts WHERE id = %s",
        (alert_id,),
    ).fetchone()
    assert stored == ("resolved", "false_positive", "dana", True)
    # Reopening clears the resolution; a note alone is a row of its own.
    status, body = await patch(client, alert_id, {"status": "open", "assignee": None})
    assert (status, body["status"], body["resolution"], body["assignee"]) == (
        200,
        "open",
        None,
        None,
    )
    status, body = await patch(client, alert_id, {"note": "customer called"})
    assert status == 200
    assert [(h["field"], h["note"]) for h in body["history"][-1:]] == [("note", "customer called")]
    assert body["version"] == len(body["history"]) == 8


@pytest.mark.parametrize(
    ("start", "body", "status"),
    [
        ([], {"status": "open"}, 409),
        ([{"status": "acknowledged"}], {"status": "acknowledged"}, 409),
        ([{"status": "resolved", "resolution": "expected"}], {"status": "acknowledged"}, 409),
        (
            [{"status": "resolved", "resolution": "expected"}],
            {"status": "resolved", "resolution": "false_positive"},
            409,
        ),
        ([], {"status": "resolved"}, 422),
        ([], {"resolution": "expected"}, 422),
        ([], {}, 422),
        ([], {"status": "closed"}, 422),
        ([], {"note": ""}, 422),
        ([], {"note": "x" * 2001}, 422),
        ([], {"assignee": "x" * 201}, 422),
        ([], {"status": "acknowledged", "surprise": 1}, 422),
        (
            [],
            {
                "status": "resolved",
                "resolution": "false_positive",
                "suppress": {"reason": "r", "duration_hours": 1},
            },
            422,
        ),
        ([], [1], 422),
    ],
)
async def test_refused_changes_write_nothing(
    client: TestClient[Any, Any], db: Any, start: list[Any], body: Any, status: int
) -> None:
    (alert_id,) = insert_alerts(db, 1)
    for step in start:
        assert (await patch(client, alert_id, step))[0] == 200
    before = db.execute("SELECT count(*) FROM alert_history").fetchone()
    answer, error = await patch(client, alert_id, body)
    assert answer == status, error
    assert error["error"]
    if status == 409:
        assert "cannot become" in error["error"]
    assert db.execute("SELECT count(*) FROM alert_history").fetchone() == before


async def test_if_match_with_a_stale_version_is_refused_412(
    client: TestClient[Any, Any], db: Any
) -> None:
    (alert_id,) = insert_alerts(db, 1)
    etag = (await client.get(f"/alerts/{alert_id}")).headers["ETag"]
    # Two analysts read the same version; the first change wins, the second is told.
    first = await client.patch(
        f"/alerts/{alert_id}", json={"assignee": "ana"}, headers=ANALYST | {"If-Match": etag}
    )
    assert first.status == 200
    assert first.headers["ETag"] != etag
    second = await client.patch(
        f"/alerts/{alert_id}", json={"assignee": "bo"}, headers=ANALYST | {"If-Match": etag}
    )
    assert second.status == 412
    assert second.headers["ETag"] == first.headers["ETag"]
    assert (await client.get(f"/alerts/{alert_id}")).headers["ETag"] == first.headers["ETag"]
    again = await client.patch(
        f"/alerts/{alert_id}",
        json={"assignee": "bo"},
        headers=ANALYST | {"If-Match": first.headers["ETag"]},
    )
    assert again.status == 200
    star = await patch(client, alert_id, {"note": "any version"}, **{"If-Match": "*"})
    assert star[0] == 200


async def test_a_change_committed_while_a_patch_waits_for_the_lock_fails_its_if_match(
    client: TestClient[Any, Any], db: Any, database_url: str, isolated: Isolated
) -> None:
    """Lost update: a PATCH that waited for the row lock counted the version in the snapshot
    from before the wait, so an If-Match the change just committed had made stale passed."""
    (alert_id,) = insert_alerts(db, 1)
    etag = (await client.get(f"/alerts/{alert_id}")).headers["ETag"]
    options = f"-c search_path={isolated.schema}"
    async with await psycopg.AsyncConnection.connect(database_url, options=options) as other:
        # Another analyst's change, holding the row lock while the PATCH arrives.
        await other.execute("SELECT 1 FROM alerts WHERE id = %s FOR UPDATE", (alert_id,))
        waiting = asyncio.create_task(
            patch(client, alert_id, {"assignee": "bo"}, **{"If-Match": etag})
        )
        await asyncio.sleep(1)  # the PATCH is now blocked on the lock
        await other.execute("UPDATE alerts SET assignee = 'ana' WHERE id = %s", (alert_id,))
        await other.execute(
            "INSERT INTO alert_history (alert_id, actor, field, from_value, to_value)"
            " VALUES (%s, 'tests', 'assignee', NULL, 'ana')",
            (alert_id,),
        )
        await other.commit()
        status, _ = await waiting
    assert status == 412
    assert db.execute("SELECT assignee FROM alerts WHERE id = %s", (alert_id,)).fetchone() == (
        "ana",
    )
    # Many at once naming one version: exactly one wins.
    etag = (await client.get(f"/alerts/{alert_id}")).headers["ETag"]
    results = await asyncio.gather(
        *(patch(client, alert_id, {"assignee": f"a{i}"}, **{"If-Match": etag}) for i in range(8))
    )
    assert sorted(status for status, _ in results) == [200] + [412] * 7


async def test_concurrent_changes_each_see_the_other(client: TestClient[Any, Any], db: Any) -> None:
    """The row lock serialises two PATCHes: one acknowledges, the other then finds an
    acknowledged alert; the history holds both, none lost."""
    (alert_id,) = insert_alerts(db, 1)
    results = await asyncio.gather(
        *(patch(client, alert_id, {"status": "acknowledged"}) for _ in range(2)),
        *(patch(client, alert_id, {"note": f"note {i}"}) for i in range(3)),
    )
    assert sorted(status for status, _ in results[:2]) == [200, 409]
    rows = db.execute(
        "SELECT field FROM alert_history WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    assert sorted(field for (field,) in rows) == ["note", "note", "note", "status"]


async def test_only_analysts_change_alerts(client: TestClient[Any, Any], db: Any) -> None:
    (alert_id,) = insert_alerts(db, 1)
    for scope in ("ingest", "read"):
        response = await client.patch(
            f"/alerts/{alert_id}", json={"status": "acknowledged"}, headers=SCOPED_HEADERS[scope]
        )
        assert response.status == 403
        assert "'analyst' scope" in (await response.json())["error"]
    ingest_read = await client.get(f"/alerts/{alert_id}", headers=SCOPED_HEADERS["ingest"])
    assert ingest_read.status == 403
    assert (await client.get(f"/alerts/{alert_id}", headers=SCOPED_HEADERS["read"])).status == 200
    assert db.execute("SELECT count(*) FROM alert_history").fetchone() == (0,)


@pytest.mark.parametrize(
    "body",
    [
        {"note": "x" * 2000},
        {"note": "مرحبا \u202e‮ evil \u202c and 🧾"},
        {"assignee": "\u202eadmin"},
        {"assignee": "a" * 200},
        {"assignee": "a" * 2048},
        {"note": "n" * 2048},
        {"assignee": 5},
        {"note": {"nested": ["x"]}},
        {"note": "nul \x00 inside"},
        {"assignee": "nul\x00"},
        {"note": "\ud800"},
    ],
)
async def test_hostile_text_is_stored_as_text_or_refused_cleanly(
    client: TestClient[Any, Any], db: Any, body: dict[str, str]
) -> None:
    (alert_id,) = insert_alerts(db, 1)
    status, answer = await patch(client, alert_id, body)
    assert status in (200, 400, 422), answer
    if status == 200:
        value = next(iter(body.values()))
        assert value in (answer["assignee"], answer["history"][-1]["note"])
    else:
        assert answer["detail"] or answer["error"]


async def test_the_inbox_filters_by_status_assignee_and_suppression(
    client: TestClient[Any, Any], db: Any
) -> None:
    newest_first = insert_alerts(db, 5)
    await patch(client, newest_first[0], {"status": "acknowledged", "assignee": "dana"})
    await patch(client, newest_first[1], {"status": "resolved", "resolution": "expected"})
    await patch(client, newest_first[2], {"assignee": "dana"})

    async def ids(**params: str) -> list[str]:
        response = await client.get("/alerts", params=params)
        assert response.status == 200, await response.text()
        return [alert["id"] for alert in await response.json()]

    assert await ids(status="open") == newest_first[2:]
    assert await ids(status="acknowledged,resolved") == newest_first[:2]
    response = await client.get("/alerts?status=open&status=resolved&limit=2")
    assert [a["id"] for a in await response.json()] == [newest_first[1], newest_first[2]]
    assert "X-Next-Cursor" in response.headers
    assert await ids(assignee="dana") == [newest_first[0], newest_first[2]]
    assert await ids(assignee="dana", status="open") == [newest_first[2]]
    assert await ids(suppressed="true") == []
    assert len(await ids(suppressed="false")) == 5
    listed = {a["id"]: a for a in await (await client.get("/alerts")).json()}
    first = listed[newest_first[0]]
    assert (first["status"], first["assignee"], first["resolution"]) == (
        "acknowledged",
        "dana",
        None,
    )
    assert listed[newest_first[1]]["resolution"] == "expected"
    assert listed[newest_first[1]]["suppressed"] is False
    for bad in ({"status": "closed"}, {"suppressed": "yes"}, {"assignee": "a\x00"}):
        response = await client.get("/alerts", params=bad)
        assert response.status == 400
        assert (await response.json())["detail"][0]["field"] == next(iter(bad))
