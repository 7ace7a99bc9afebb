"""A verdict encoded with its baseline's JSON reused is byte for byte what encode_model gives
(detector_worker/verdict_json.py)."""

import uuid
from datetime import UTC, datetime

from benchmarks.workload import baselines
from detector_worker.verdict_json import encode_verdict
from schemas import Verdict, encode_model

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BASELINE = baselines(NOW)[0]


def _verdict(**fields: object) -> Verdict:
    return Verdict.model_validate(
        {"transaction_id": uuid.uuid4(), "anomaly": False, "scored_at": NOW} | fields
    )


def test_a_verdict_without_a_baseline() -> None:
    verdict = _verdict()
    assert encode_verdict(verdict) == encode_model(verdict)


def test_verdicts_naming_a_baseline_the_first_time_and_from_the_cache() -> None:
    for _ in range(3):
        verdict = _verdict(baseline=BASELINE, z_score=0.4, tail_probability=0.35)
        assert encode_verdict(verdict) == encode_model(verdict)


def test_an_alerting_verdict_whose_message_looks_like_the_next_field() -> None:
    verdict = _verdict(
        anomaly=True,
        severity="critical",
        rule="tail",
        z_score=6.1,
        message='Amount exceeds 5σ baseline,"scored_at":"x" \\ "',
        baseline=BASELINE,
    )
    assert encode_verdict(verdict) == encode_model(verdict)


def test_another_baseline_with_the_same_values_is_encoded_from_its_own_fields() -> None:
    other = BASELINE.model_copy(update={"count": BASELINE.count + 1})
    first, second = _verdict(baseline=BASELINE), _verdict(baseline=other)
    assert encode_verdict(first) == encode_model(first)
    assert encode_verdict(second) == encode_model(second)
