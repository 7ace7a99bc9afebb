"""The accuracy benchmark: metrics on a hand-made case, the replay's baselines, and the
scorer's behaviour on a small labelled stream."""

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import get_args
from uuid import uuid4

import pytest

from benchmarks.accuracy import Metrics, Scored, evaluate, main, replay
from benchmarks.generator import AnomalyKind, LabelledTransaction, StreamConfig, generate
from detector_worker.scoring import SEED_TIERS, Method, ScoringConfig
from schemas import Severity, Transaction, Verdict

DAY0 = datetime(2025, 3, 1, tzinfo=UTC)


def txn(amount: str, at: datetime = DAY0) -> Transaction:
    return Transaction(
        id=uuid4(), amount=Decimal(amount), category="food", merchant="Cafe", transaction_date=at
    )


def outcome(kind: AnomalyKind | None, severity: Severity | None, drifting: bool = False) -> Scored:
    item = LabelledTransaction(txn("10"), kind, drifting)
    verdict = Verdict(
        transaction_id=item.transaction.id,
        anomaly=severity is not None,
        severity=severity,
        scored_at=DAY0,
    )
    return Scored(item, verdict)


@pytest.fixture
def hand_made() -> Metrics:
    return evaluate(
        [
            outcome(AnomalyKind.SPIKE, "critical"),  # TP
            outcome(AnomalyKind.BURST, "medium"),  # TP
            outcome(AnomalyKind.STABLE_JUMP, None),  # FN
            outcome(None, "medium"),  # FP
            outcome(None, "high", drifting=True),  # FP, and a flagged drift
            outcome(None, None, drifting=True),
            outcome(None, None),
            outcome(None, None),
        ]
    )


def test_overall_counts_and_rates(hand_made: Metrics) -> None:
    assert (hand_made.true_positives, hand_made.false_positives) == (2, 2)
    assert (hand_made.false_negatives, hand_made.normal) == (1, 5)
    assert hand_made.precision == pytest.approx(0.5)
    assert hand_made.recall == pytest.approx(2 / 3)
    assert hand_made.f1 == pytest.approx(4 / 7)
    assert hand_made.false_alerts_per_10k == pytest.approx(4000)
    assert (hand_made.drift_flagged, hand_made.drift_total) == (1, 2)


def test_per_severity_and_per_kind(hand_made: Metrics) -> None:
    figures = hand_made.flat()
    assert (figures["medium.alerts"], figures["medium.precision"]) == (2, 0.5)
    assert (figures["high.alerts"], figures["high.precision"]) == (1, 0.0)
    assert (figures["critical.alerts"], figures["critical.precision"]) == (1, 1.0)
    assert figures["recall.spike"] == figures["recall.burst"] == 1.0
    assert figures["recall.stable_jump"] == 0.0
    # No labelled new merchant: undefined, not a perfect or a zero score.
    assert math.isnan(figures["recall.new_merchant"])


def test_flagged_transactions_do_not_feed_the_baseline() -> None:
    normal = [
        LabelledTransaction(txn(str(100 + i % 7), DAY0 + timedelta(minutes=10 * i)))
        for i in range(40)
    ]
    spike = LabelledTransaction(txn("5000", DAY0 + timedelta(hours=8)), AnomalyKind.SPIKE)
    after = LabelledTransaction(txn("101", DAY0 + timedelta(hours=10)))
    scored = replay([*normal, spike, after], ScoringConfig(), DAY0)
    assert scored[-2].verdict.severity == "critical"
    baseline = scored[-1].verdict.baseline
    assert baseline is not None
    assert baseline.count == 40  # the spike was left out


SMALL = StreamConfig(days=10, per_day=300, anomaly_from_day=7, drift_from_day=3, spikes_per_day=5)


@pytest.fixture(scope="module")
def small_stream() -> list[LabelledTransaction]:
    return generate(4, SMALL)


@pytest.mark.parametrize("method", get_args(Method))
def test_spikes_and_new_merchants_are_caught(
    small_stream: list[LabelledTransaction], method: Method
) -> None:
    config = ScoringConfig(method=method)
    figures = evaluate(replay(small_stream, config, SMALL.day_start(7), window=7)).flat()
    assert figures["labelled.spike"] >= 10
    assert figures["recall.spike"] >= 0.8
    assert figures["recall.new_merchant"] == 1.0


def test_log_scale_is_quieter_on_normal_traffic(small_stream: list[LabelledTransaction]) -> None:
    """The claim docs/accuracy.md rests on: on log-normal amounts the log-scale z raises far
    fewer false alerts, in total and on the drifting merchant, and its critical ones are real."""
    scored_from = SMALL.day_start(7)
    raw_config = ScoringConfig(method="zscore", tiers=SEED_TIERS)
    log_config = ScoringConfig(method="log_zscore", tiers=SEED_TIERS)
    raw = evaluate(replay(small_stream, raw_config, scored_from, window=7))
    log = evaluate(replay(small_stream, log_config, scored_from, window=7))
    assert log.false_alerts_per_10k < raw.false_alerts_per_10k / 2
    assert log.drift_flagged < raw.drift_flagged
    assert log.drift_flagged < 0.15 * log.drift_total
    assert log.flat()["critical.precision"] >= 0.9


def test_command_line_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "accuracy.json"
    main(
        ["--days", "4", "--per-day", "60", "--warmup-days", "3", "--runs", "1", "--json", str(path)]
    )
    out = capsys.readouterr().out
    assert "| log_zscore | on |" in out
    report = json.loads(path.read_text())
    assert report["seeds"] == [7]
    assert {(r["method"], r["strict_mode"]) for r in report["results"]} == {
        ("zscore", False),
        ("zscore", True),
        ("log_zscore", False),
        ("log_zscore", True),
        ("tail", False),
        ("tail", True),
    }
