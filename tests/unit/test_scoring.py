"""The pure scorer: seed rules, tiers, fallbacks, and properties that must always hold."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.support import index
from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.scoring import (
    SEED_STRICT_TIERS,
    SEED_TIERS,
    ScoringConfig,
    score,
    select_baseline,
)
from schemas import Baseline, BaselineScope, ScopeKind, Transaction

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
# These tests are about the seed's rules: its raw z-score and its sigma tiers, one setting
# away from the production defaults (tests/unit/test_tail_scoring.py tests those).
CONFIG = ScoringConfig(method="zscore", tiers=SEED_TIERS, strict_tiers=SEED_STRICT_TIERS)
STRICT = ScoringConfig(
    method="zscore", tiers=SEED_TIERS, strict_tiers=SEED_STRICT_TIERS, strict_mode=True
)


def txn(
    amount: str | Decimal, category: str = "food", merchant: str = "Cafe", currency: str = "USD"
) -> Transaction:
    return Transaction(
        id=uuid4(),
        amount=Decimal(amount),
        currency=currency,
        category=category,
        merchant=merchant,
        transaction_date=NOW,
    )


def baseline(
    kind: ScopeKind, name: str, mean: float, stddev: float, count: int = 100, currency: str = "USD"
) -> Baseline:
    return Baseline(
        id=uuid4(),
        scope=BaselineScope(kind=kind, name=name, currency=currency),
        count=count,
        mean=mean,
        stddev=stddev,
        window_days=30,
        computed_at=NOW,
    )


def table(*baselines: Baseline) -> dict[ScopeKey, HeldBaseline]:
    return index(baselines)


FOOD = table(baseline(ScopeKind.CATEGORY, "food", mean=100, stddev=10))


@pytest.mark.parametrize(
    ("amount", "severity", "message"),
    [
        ("110", None, None),
        ("119.99", None, None),
        ("120", "medium", "Amount exceeds 2σ baseline"),
        ("130", "high", "Amount exceeds 3σ baseline"),
        ("149.99", "high", "Amount exceeds 3σ baseline"),
        ("150", "critical", "Amount exceeds 5σ baseline"),
        ("10000", "critical", "Amount exceeds 5σ baseline"),
    ],
)
def test_seed_tiers_are_inclusive(amount: str, severity: str | None, message: str | None) -> None:
    verdict = score(txn(amount), FOOD, CONFIG, NOW)
    assert verdict.anomaly is (severity is not None)
    assert verdict.severity == severity
    assert verdict.message == message


def test_one_sided_low_amounts_do_not_alert() -> None:
    verdict = score(txn("0.01"), FOOD, CONFIG, NOW)
    assert not verdict.anomaly
    assert verdict.z_score is not None and verdict.z_score < -9


def test_an_alert_explains_itself() -> None:
    verdict = score(txn("135"), FOOD, CONFIG, NOW)
    assert verdict.rule == "zscore"
    assert verdict.z_score == pytest.approx(3.5)
    assert verdict.baseline is not None and verdict.baseline.scope.name == "food"


def test_strict_mode_lowers_every_tier() -> None:
    strict = STRICT
    assert score(txn("115"), FOOD, strict, NOW).severity == "medium"
    assert score(txn("125"), FOOD, strict, NOW).severity == "high"
    assert score(txn("140"), FOOD, strict, NOW).severity == "critical"


def test_low_variance_fallback_follows_the_seed() -> None:
    stable = table(baseline(ScopeKind.CATEGORY, "food", mean=40, stddev=0))
    flagged = score(txn("100"), stable, CONFIG, NOW)
    assert flagged.anomaly and flagged.severity == "high" and flagged.rule == "low_variance"
    assert flagged.message == "Amount is more than 2x stable baseline"
    # Twice the mean but within the margin of 50: not an anomaly.
    assert not score(txn("80"), stable, CONFIG, NOW).anomaly
    # Beyond the margin but under twice the mean: not an anomaly either.
    big = table(baseline(ScopeKind.CATEGORY, "food", mean=1000, stddev=0))
    assert not score(txn("1500"), big, CONFIG, NOW).anomaly


def test_too_few_samples_give_no_verdict() -> None:
    thin = table(baseline(ScopeKind.CATEGORY, "food", mean=100, stddev=10, count=29))
    verdict = score(txn("10000"), thin, CONFIG, NOW)
    assert not verdict.anomaly and verdict.baseline is None


def test_merchant_scope_wins_when_it_has_enough_data() -> None:
    both = table(
        baseline(ScopeKind.CATEGORY, "food", mean=100, stddev=10),
        baseline(ScopeKind.MERCHANT, "Steakhouse", mean=300, stddev=30),
    )
    chosen = select_baseline(txn("310", merchant="Steakhouse"), both, 30)
    assert chosen is not None and chosen.key[0] is ScopeKind.MERCHANT
    assert not score(txn("310", merchant="Steakhouse"), both, CONFIG, NOW).anomaly
    # A merchant with too little history falls back to its category.
    sparse = {**both, **table(baseline(ScopeKind.MERCHANT, "Steakhouse", 300, 30, count=3))}
    assert score(txn("310", merchant="Steakhouse"), sparse, CONFIG, NOW).severity == "critical"


def test_currencies_never_share_a_baseline() -> None:
    assert not score(txn("10000", currency="EUR"), FOOD, CONFIG, NOW).anomaly


amounts = st.decimals(
    min_value=Decimal("0.0001"),
    max_value=Decimal("99999999999999"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)
means = st.floats(min_value=0, max_value=1e9, allow_nan=False)
stddevs = st.floats(min_value=0, max_value=1e9, allow_nan=False)
RANK = {None: 0, "medium": 1, "high": 2, "critical": 3}


@given(a=amounts, b=amounts, mean=means, stddev=stddevs, strict=st.booleans())
def test_a_larger_amount_never_gets_a_lower_severity(
    a: Decimal, b: Decimal, mean: float, stddev: float, strict: bool
) -> None:
    low, high = sorted((a, b))
    baselines = table(baseline(ScopeKind.CATEGORY, "food", mean, stddev))
    config = STRICT if strict else CONFIG
    assert (
        RANK[score(txn(low), baselines, config, NOW).severity]
        <= RANK[score(txn(high), baselines, config, NOW).severity]
    )


@given(amount=amounts, mean=means, stddev=stddevs)
def test_strict_mode_never_flags_less(amount: Decimal, mean: float, stddev: float) -> None:
    baselines = table(baseline(ScopeKind.CATEGORY, "food", mean, stddev))
    normal = score(txn(amount), baselines, CONFIG, NOW)
    strict = score(txn(amount), baselines, STRICT, NOW)
    assert RANK[strict.severity] >= RANK[normal.severity]


@given(
    amount=amounts,
    mean=st.floats(allow_nan=False, allow_infinity=False),
    stddev=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    count=st.integers(min_value=0, max_value=10**9),
)
def test_no_baseline_makes_the_scorer_raise(
    amount: Decimal, mean: float, stddev: float, count: int
) -> None:
    baselines = table(baseline(ScopeKind.CATEGORY, "food", mean, stddev, count=count))
    verdict = score(txn(amount), baselines, CONFIG, NOW)
    assert verdict.anomaly is (verdict.severity is not None)
