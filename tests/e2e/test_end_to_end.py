"""The whole system as processes on real Kafka and PostgreSQL: history in, baselines out,
an outlier posted over HTTP comes back as an explained alert everywhere it should. Each
worker logs in as its own least-privileged role, so a missing grant fails here."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from detector_worker.scoring import ScoringConfig, format_sigma
from tests.conftest import AUTH_HEADERS, Isolated
from tests.kafka_helpers import produce_history, read_topic
from tests.processes import ROOT, Worker, free_port, get_json, running, wait_for

# The production tiers, whatever they are set to.
CRITICAL_Z = ScoringConfig().tiers.critical
CRITICAL_MESSAGE = f"Amount exceeds {format_sigma(CRITICAL_Z)} baseline"

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class System:
    env: dict[str, str]
    isolated: Isolated
    api: str
    detector: str
    gateway: Worker
    detector_worker: Worker


@pytest.fixture
def system(isolated: Isolated, tmp_path: Path) -> Iterator[System]:
    gateway_port, detector_port = free_port(), free_port()
    env = {
        **isolated.env,
        "PORT": str(gateway_port),
        "METRICS_PORT": str(detector_port),
        "RATE_LIMIT_RPS": "1000",
        "RATE_LIMIT_BURST": "1000",
        "CONSUMER_GROUP": f"detector-{uuid4().hex[:8]}",
    }
    gateway_env = env | {"DATABASE_URL": isolated.worker_urls["gateway"]}
    detector_env = env | {"DATABASE_URL": isolated.worker_urls["detector"]}
    with (
        running("ingest_gateway", gateway_env, tmp_path / "gateway.log") as gateway,
        running("detector_worker", detector_env, tmp_path / "detector.log") as detector,
    ):
        api, ops = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{detector_port}"
        gateway.wait_healthy(f"{api}/health")
        detector.wait_healthy(f"{ops}/health")
        yield System(env, isolated, api, ops, gateway, detector)


def post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - localhost
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **AUTH_HEADERS},
    )
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
        return response.status, json.loads(response.read())


async def test_an_outlier_posted_over_http_becomes_an_alert_everywhere(
    system: System, db: Any, tmp_path: Path
) -> None:
    await produce_history(system.env, 60)
    wait_for(
        lambda: db.execute("SELECT count(*) FROM transactions").fetchone() == (60,),
        60,
        "the history to be scored and persisted",
    )
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (0,)

    recompute = subprocess.run(
        [sys.executable, "-m", "baseline_worker", "--once"],
        cwd=ROOT,
        env=system.env
        | {
            "DATABASE_URL": system.isolated.worker_urls["baseline"],
            "METRICS_PORT": str(free_port()),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert recompute.returncode == 0, recompute.stderr.decode()[-3000:]
    wait_for(
        lambda: get_json(f"{system.detector}/health")[1]["baseline_scopes"] == 2,
        30,
        "the detector to hold the category and merchant baselines",
    )

    status, accepted = post_json(
        f"{system.api}/transactions",
        {
            "amount": 10000,
            "category": "food",
            "merchant": "Starbucks",
            "transaction_date": datetime.now(UTC).isoformat(),
        },
    )
    # The detector's verdict came back within the gateway's wait: the seed's reply shape.
    assert status == 201
    assert accepted["anomaly"] is True
    assert accepted["severity"] == "critical"
    txn_id = accepted["id"]

    def alert_row() -> Any:
        return db.execute(
            "SELECT severity, alert_message, rule FROM alerts WHERE transaction_id = %s", (txn_id,)
        ).fetchone()

    wait_for(lambda: alert_row() is not None, 30, "the alert row")
    # The default method reads the tail of the scope's own amounts: nothing near 10,000 was
    # ever seen at Starbucks (only 90 and 110): rarer than 1 in 1,000,000, critical.
    assert alert_row() == ("critical", CRITICAL_MESSAGE, "tail")
    verdict = db.execute(
        "SELECT anomaly, severity, z_score FROM transactions WHERE id = %s", (txn_id,)
    ).fetchone()
    assert verdict[0] is True and verdict[1] == "critical" and verdict[2] >= CRITICAL_Z

    records = await read_topic(
        system.env["KAFKA_BOOTSTRAP_SERVERS"],
        system.env["TOPIC_ALERTS"],
        until=lambda rs: any(r.key == txn_id.encode() for r in rs),
    )
    alert = json.loads(next(r.value for r in records if r.key == txn_id.encode()))
    assert alert["severity"] == "critical"
    assert alert["baseline"]["scope"] == {
        "kind": "merchant",
        "name": "Starbucks",
        "currency": "USD",
    }

    status, alerts = get_json(f"{system.api}/alerts?limit=50", headers=AUTH_HEADERS)
    assert status == 200
    assert alerts[0]["transaction_id"] == txn_id
    assert alerts[0]["severity"] == "critical"
    assert alerts[0]["alert_message"] == CRITICAL_MESSAGE

    metrics = urllib.request.urlopen(f"{system.detector}/metrics").read().decode()  # noqa: S310
    assert 'transactions_total{category="food"} 61.0' in metrics
    assert 'anomalies_by_severity_total{severity="critical",suppressed="false"} 1.0' in metrics


def test_workers_stop_cleanly_on_sigterm(system: System) -> None:
    assert system.gateway.stop() == 0
    assert system.detector_worker.stop() == 0


HOSTILE = [
    "Robert'); DROP TABLE transactions;--",
    "' OR '1'='1",
    '"quoted" \\ back\\slash %s %(name)s {0}',
    "☃ émoji 🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ‮rtl",
    "x" * 128,
]


async def test_hostile_strings_travel_end_to_end_verbatim(system: System, db: Any) -> None:
    ids = {}
    for text in HOSTILE:
        status, reply = post_json(
            f"{system.api}/transactions?wait=false",
            {
                "amount": "10.00",
                "category": text,
                "merchant": text[::-1],
                "transaction_date": datetime.now(UTC).isoformat(),
            },
        )
        assert status == 202
        ids[reply["id"]] = text
    wait_for(
        lambda: db.execute("SELECT count(*) FROM transactions").fetchone()[0] == len(ids),
        30,
        "the hostile transactions to be stored",
    )
    for txn_id, text in ids.items():
        stored = db.execute(
            "SELECT category, merchant FROM transactions WHERE id = %s", (txn_id,)
        ).fetchone()
        assert stored == (text, text[::-1])
    # And a NUL, which PostgreSQL text cannot hold, is refused at the door (422), not a 5xx.
    request = urllib.request.Request(  # noqa: S310 - localhost
        f"{system.api}/transactions",
        method="POST",
        data=json.dumps(
            {
                "amount": "1.00",
                "category": "a\u0000b",
                "merchant": "m",
                "transaction_date": datetime.now(UTC).isoformat(),
            }
        ).encode(),
        headers={"Content-Type": "application/json", **AUTH_HEADERS},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert refused.value.code == 422
