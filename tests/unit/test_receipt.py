"""The answer to POST /transactions: a verdict without a baseline says so."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.support import settings_from
from detector_worker.settings import DetectorSettings
from ingest_gateway.transactions import receipt
from schemas import Severity, TransactionAccepted, Verdict
from tests.unit.test_detector_observability import baseline

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
README = Path(__file__).parents[2] / "README.md"
FOOD = baseline("food", NOW)


def body_of(verdict: Verdict) -> dict[str, object]:
    response = receipt(verdict.transaction_id, verdict, {})
    assert response.status == 201 and response.text is not None
    answer: dict[str, object] = json.loads(response.text)
    return answer


def test_scored_without_a_baseline_says_no_baseline() -> None:
    verdict = Verdict(transaction_id=uuid4(), anomaly=False, baseline=None, scored_at=NOW)
    body = body_of(verdict)
    assert (body["status"], body["anomaly"], body["reason"]) == ("scored", False, "no_baseline")


def test_scored_against_a_baseline_gives_no_reason() -> None:
    verdict = Verdict(transaction_id=uuid4(), anomaly=False, baseline=FOOD, scored_at=NOW)
    assert body_of(verdict)["reason"] is None


def test_the_readme_examples_show_the_rule_the_default_method_answers() -> None:
    default = settings_from(DetectorSettings, {"DATABASE_URL": "postgresql://u@db/j"})
    shown = set(re.findall(r'"rule": "(\w+)"', README.read_text()))
    assert shown == {default.anomaly_method}


def test_the_pending_answer_is_the_models_encoding_with_this_id() -> None:
    txn_id = uuid4()
    response = receipt(txn_id, None, {"X-Transaction-Id": str(txn_id)})
    assert response.status == 202 and response.text is not None
    assert json.loads(response.text) == TransactionAccepted(id=txn_id).model_dump(mode="json")
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["X-Transaction-Id"] == str(txn_id)


@given(
    anomaly=st.booleans(),
    severity=st.sampled_from([None, "medium", "high", "critical"]),
    message=st.none() | st.text(),
    z_score=st.none() | st.floats(),
    scored_against_a_baseline=st.booleans(),
)
def test_the_scored_answer_is_the_models_encoding(
    anomaly: bool,
    severity: Severity | None,
    message: str | None,
    z_score: float | None,
    scored_against_a_baseline: bool,
) -> None:
    baseline = FOOD if scored_against_a_baseline else None
    verdict = Verdict(
        transaction_id=uuid4(),
        anomaly=anomaly,
        severity=severity,
        message=message,
        z_score=z_score,
        baseline=baseline,
        scored_at=NOW,
    )
    model = TransactionAccepted(
        id=verdict.transaction_id,
        anomaly=anomaly,
        status="scored",
        severity=severity,
        alert_message=message,
        z_score=z_score,
        reason=None if scored_against_a_baseline else "no_baseline",
    )
    response = receipt(verdict.transaction_id, verdict, {})
    assert response.body == json.dumps(model.model_dump(mode="json")).encode()
