"""The alert page's pictures (ingest_gateway/ui/chart.py): tier lines where the scope's
curve crosses each tier's rarity, the transaction marked, nothing drawn from nothing."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from detector_worker.scoring import DEFAULT_TIERS, SEED_STRICT_TIERS, SEED_TIERS
from detector_worker.settings import DetectorSettings
from ingest_gateway.settings import GatewaySettings
from ingest_gateway.ui import chart
from schemas.rarity import probability_of
from tests.ui_seed import TAIL

NORMAL = {"mean": 100.0, "stddev": 10.0, "log_mean": None, "log_stddev": None, "tail": None}


def test_z_rule_tiers_sit_at_mean_plus_z_sigma() -> None:
    curve = chart.survival_of("zscore", NORMAL)
    assert curve is not None
    tiers = dict(chart.tier_amounts(curve, 1.0, DEFAULT_TIERS))
    assert tiers["medium"] == pytest.approx(100 + 10 * DEFAULT_TIERS.medium, rel=1e-6)
    assert tiers["critical"] == pytest.approx(100 + 10 * DEFAULT_TIERS.critical, rel=1e-6)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ALERT_TIERS": "seed"}, SEED_TIERS),
        ({"ANOMALY_STRICT_MODE": "true", "STRICT_ALERT_TIERS": "seed-strict"}, SEED_STRICT_TIERS),
        ({}, DEFAULT_TIERS),
    ],
)
def test_the_page_draws_the_tiers_the_detector_scores_with(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: object
) -> None:
    """ALERT_TIERS (or STRICT_ALERT_TIERS in strict mode) read by the gateway as by the
    detector: the seed's 3σ draws `high` at mean + 3σ, not at the default's 3.54σ."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv("API_KEYS_SHA256", "k:" + "0" * 64)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tiers = GatewaySettings(_env_file=None).active_tiers
    detector = DetectorSettings(_env_file=None).scoring_config()
    assert tiers == detector.active_tiers == expected
    curve = chart.survival_of("zscore", NORMAL)
    assert curve is not None
    drawn = dict(chart.tier_amounts(curve, 1.0, tiers))
    assert drawn["high"] == pytest.approx(100 + 10 * tiers.high, rel=1e-6)


def test_tail_rule_tiers_are_where_the_fitted_tail_reaches_each_rarity() -> None:
    baseline = {**NORMAL, "tail": TAIL}
    curve = chart.survival_of("tail", baseline)
    assert curve is not None
    for name, amount in chart.tier_amounts(curve, 1.0, DEFAULT_TIERS):
        z = getattr(DEFAULT_TIERS, name)
        # Read at the bin's lower edge: the curve steps, within one bin (2 %) of the tier.
        assert curve(amount * 1.02) <= probability_of(z) <= curve(amount / 1.02)


def test_the_distribution_marks_the_transaction_past_the_tier_it_reached() -> None:
    drawn = chart.distribution("zscore", NORMAL, 140.0, DEFAULT_TIERS)
    assert drawn is not None
    marks = {line.kind: line.x1 for line in drawn.lines}
    assert marks["high"] < marks["transaction"] < marks["critical"]
    assert drawn.path.startswith("M") and "nan" not in drawn.path
    assert "P(amount ≥ 140) ≈ 3.2e-05" in drawn.summary


def test_a_baseline_without_spread_or_tail_draws_no_curve() -> None:
    assert (
        chart.distribution("low_variance", {**NORMAL, "stddev": 0.0}, 250.0, DEFAULT_TIERS) is None
    )


def test_the_timeline_rings_the_transaction_among_its_scope() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    recent = [
        {"transaction_date": now - timedelta(hours=h), "amount": 90.0 + h, "severity": None}
        for h in range(1, 6)
    ]
    drawn = chart.timeline(recent, 300.0, now, [("high", 135.4)])
    assert drawn is not None
    kinds = [dot.kind for dot in drawn.dots]
    assert kinds.count("transaction") == 1 and kinds.count("normal") == 5
    ringed = next(dot for dot in drawn.dots if dot.kind == "transaction")
    assert ringed.x == max(dot.x for dot in drawn.dots)
    assert ringed.y == min(dot.y for dot in drawn.dots)  # the highest amount, drawn highest
    assert all(math.isfinite(dot.y) for dot in drawn.dots)
