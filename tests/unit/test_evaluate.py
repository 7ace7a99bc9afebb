"""Evaluation against the oracle: matched-rate recall, tier calibration, severity floors and
leave-one-family-out, on hand-made cases and as properties over any records."""

import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.evaluate import (
    FA_RATES,
    ScoredRecord,
    at_severity,
    by_family,
    calibration,
    leave_one_family_out,
    matched_recall,
    min_share_of_oracle,
    missed_by_method,
    nominal_rate,
    oracle_score,
    recall_at_rate,
    severity_of,
    z_equivalent,
)

TIERS = (("medium", nominal_rate(2)), ("high", nominal_rate(3)), ("critical", nominal_rate(5)))


def record(
    anomaly: bool, p_true: float, score: float = 0.0, severity: str | None = None
) -> ScoredRecord:
    return ScoredRecord(anomaly, "gamma", p_true, severity, score)


records_strategy = st.lists(
    st.builds(
        record,
        anomaly=st.booleans(),
        p_true=st.floats(0.0, 1.0),
        score=st.floats(-10, 10) | st.just(-math.inf) | st.just(math.nan),
    ),
    max_size=300,
)
rates = st.lists(st.floats(0, 20_000), min_size=2, max_size=5).map(sorted)


def test_the_threshold_allows_the_rate_and_no_more() -> None:
    # 10,000 normal records scored 0..9999 and 4 anomalies: 5 per 10k allows 5 false alerts.
    normal = [record(False, 0.5, score=float(s)) for s in range(10_000)]
    anomalies = [record(True, 0.0, score=s) for s in (10_000, 9_996, 9_994.5, 3)]
    result = recall_at_rate([*normal, *anomalies], 5)
    assert (result.allowed, result.false_alerts, result.threshold) == (5, 5, 9_994)
    assert (result.caught, result.anomalies, result.recall) == (3, 4, 0.75)


def test_ties_at_the_threshold_fire_fewer_false_alerts_than_allowed() -> None:
    normal = [record(False, 1.0, score=1.0) for _ in range(10_000)]
    result = recall_at_rate([*normal, record(True, 0.0, score=2.0)], 13)
    assert (result.false_alerts, result.caught) == (0, 1)


@given(records_strategy, rates)
def test_oracle_recall_never_falls_as_the_rate_rises(
    records: list[ScoredRecord], sorted_rates: list[float]
) -> None:
    recalls = [recall_at_rate(records, r, oracle_score).caught for r in sorted_rates]
    assert recalls == sorted(recalls)


@given(records_strategy, st.floats(0, 20_000))
def test_no_rate_fires_more_false_alerts_than_it_allows(
    records: list[ScoredRecord], rate: float
) -> None:
    result = recall_at_rate(records, rate)
    assert result.false_alerts <= result.allowed
    assert 0 <= result.caught <= result.anomalies


@given(records_strategy)
def test_a_method_that_scores_by_true_rarity_matches_the_oracle(
    records: list[ScoredRecord],
) -> None:
    as_oracle = [record(r.is_anomaly, r.p_true, score=-r.p_true) for r in records]
    for matched in matched_recall(as_oracle, (*FA_RATES, 500.0)):
        assert matched.method == matched.oracle


@settings(max_examples=3, deadline=None)
@given(st.integers(0, 2**32))
def test_an_exactly_calibrated_score_has_a_ratio_near_one(seed: int) -> None:
    rng = random.Random(seed)
    normal = []
    for _ in range(40_000):
        z = rng.gauss(0, 1)  # a calibrated z-equivalent of a normal record is N(0, 1)
        severity = "critical" if z >= 5 else "high" if z >= 3 else "medium" if z >= 2 else None
        normal.append(record(False, 0.5, z, severity))
    medium, high, _critical = calibration(normal, TIERS)
    # Expected ~910 and ~54 false alerts: 6 and 4.4 standard deviations of room.
    assert medium.ratio == pytest.approx(1, abs=0.2)
    assert high.ratio == pytest.approx(1, abs=0.6)
    low, up = medium.interval
    assert low < medium.ratio < up


def test_calibration_counts_a_tier_and_those_above_it() -> None:
    records = [
        record(False, 0.5, severity="medium"),
        record(False, 0.5, severity="critical"),
        record(True, 0.0, severity="critical"),  # anomalies are not false alerts
        *[record(False, 0.5) for _ in range(97)],
    ]
    medium, high, critical = calibration(records, TIERS)
    assert (medium.false_alerts, high.false_alerts, critical.false_alerts) == (2, 1, 1)
    assert medium.normal == 99
    assert medium.ratio == pytest.approx(2 / (99 * nominal_rate(2)))
    assert high.interval[0] < high.ratio < high.interval[1]


def test_a_tier_with_no_false_alert_still_shows_how_little_that_says() -> None:
    (critical,) = calibration([record(False, 0.5) for _ in range(1000)], TIERS[2:])
    assert critical.ratio == 0
    assert critical.interval[1] > 1000  # 3.7 expected at most, against 0.0003 nominal


def test_severity_floors() -> None:
    records = [
        record(True, 0.0, severity="critical"),
        record(True, 0.0, severity="medium"),
        record(True, 0.0),
        record(False, 0.5, severity="high"),
        record(False, 0.5, severity="medium"),
        *[record(False, 0.5) for _ in range(9_998)],
    ]
    high = at_severity(records, "high")
    assert (high.true_positives, high.false_positives, high.false_negatives) == (1, 1, 2)
    assert high.false_alerts_per_10k == pytest.approx(1.0)
    medium = at_severity(records, "medium")
    assert medium.precision == 0.5
    assert medium.recall == pytest.approx(2 / 3)


@given(records_strategy.map(lambda rs: [_with_severity(r) for r in rs]))
def test_a_higher_floor_never_catches_more(records: list[ScoredRecord]) -> None:
    medium, high = at_severity(records, "medium"), at_severity(records, "high")
    assert high.true_positives <= medium.true_positives
    assert high.false_positives <= medium.false_positives
    assert medium.true_positives + medium.false_negatives == sum(r.is_anomaly for r in records)


def _with_severity(r: ScoredRecord) -> ScoredRecord:
    severity = ("medium", "high", "critical", None)[int(r.p_true * 3.999)]
    return ScoredRecord(r.is_anomaly, r.family, r.p_true, severity, r.score)


def test_leave_one_family_out_never_sees_the_held_out_family() -> None:
    families = ["gamma", "pareto", "normal"]
    seen: dict[str, list[Sequence[str]]] = {}

    def objective(candidate: str, chosen_on: Sequence[str]) -> float:
        seen.setdefault(candidate, []).append(chosen_on)
        # Each candidate is best on its own family only: the choice shows what it saw.
        return sum(1.0 if f == candidate else 0.1 for f in chosen_on)

    held = leave_one_family_out(families, families, objective, lambda c, f: f"{c} on {f}")
    assert [h.family for h in held] == families
    for h in held:
        assert h.chosen != h.family
        assert h.report == f"{h.chosen} on {h.family}"
    for calls in seen.values():
        assert [set(families) - set(c) for c in calls] == [{f} for f in families]


def test_the_worst_family_sets_the_objective() -> None:
    # Family a's anomaly scores above its normal records, family b's below them.
    per_family = by_family(
        [
            *[ScoredRecord(False, family, 0.5, None, 0.0) for family in "ab" for _ in range(1000)],
            ScoredRecord(True, "a", 0.0, None, 1.0),
            ScoredRecord(True, "b", 0.0, None, -1.0),
        ]
    )
    assert min_share_of_oracle(per_family, ["a"]) == 1.0
    assert min_share_of_oracle(per_family, ["a", "b"]) == 0.0


@given(st.floats(-4, 37))
def test_z_equivalent_inverts_the_nominal_rate(z: float) -> None:
    assert z_equivalent(nominal_rate(z)) == pytest.approx(z, abs=1e-6)


def test_z_equivalent_at_the_ends_and_the_tiers_it_reaches() -> None:
    assert (z_equivalent(0.0), z_equivalent(1.0)) == (math.inf, -math.inf)
    thresholds = (("medium", 2.0), ("high", 3.0), ("critical", 5.0))
    assert severity_of(1.99, thresholds) is None
    assert severity_of(3.0, thresholds) == "high"
    assert severity_of(math.inf, thresholds) == "critical"


def test_a_miss_is_an_anomaly_the_oracle_catches_and_the_method_does_not() -> None:
    # 10,000 normal records: 5 per 10k allows 5 false alerts, so each threshold is its 6th
    # highest normal score. The oracle ranks the three anomalies above every normal record;
    # the method ranks the second below its threshold, and the third at it (not above).
    normal = [record(False, 0.5 + s / 40_000, score=float(s)) for s in range(10_000)]
    anomalies = [
        record(True, 1e-6, score=20_000),
        record(True, 1e-6, score=3),
        record(True, 1e-6, score=9_994),
    ]
    rows = [*normal, *anomalies]
    assert missed_by_method(rows, 5) == [10_001, 10_002]


@settings(max_examples=200)
@given(records=records_strategy, rate=st.floats(0, 2_000))
def test_misses_are_anomalies_and_none_when_the_method_ranks_as_the_oracle(
    records: list[ScoredRecord], rate: float
) -> None:
    assert all(records[i].is_anomaly for i in missed_by_method(records, rate))
    as_oracle = [
        ScoredRecord(r.is_anomaly, r.family, r.p_true, r.severity, -r.p_true) for r in records
    ]
    assert missed_by_method(as_oracle, rate) == []
