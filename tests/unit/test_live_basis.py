"""What a live replay's verdicts rested on: the share of the history a verdict's baseline
could have seen, read from the timeline of stored rows, and the counts by rule and scope."""

import math
from datetime import UTC, datetime
from uuid import uuid4

from benchmarks.live_basis import StoredTimeline, coverage_bucket, stored_timings, verdict_basis
from schemas import Verdict
from schemas.baseline import Baseline, BaselineScope, ScopeKind
from schemas.verdict import Rule

T0 = 1_700_000_000.0


def timeline() -> StoredTimeline:
    stored = StoredTimeline()
    for offset, count in ((0.0, 0), (1.0, 400), (2.0, 950), (3.0, 1000)):
        stored.add(T0 + offset, count)
    return stored


def verdict(
    rule: Rule | None,
    kind: ScopeKind | None,
    computed_at: float,
    z: float | None = None,
    p: float | None = None,
) -> Verdict:
    baseline = None
    if kind is not None:
        baseline = Baseline(
            id=uuid4(),
            scope=BaselineScope(kind=kind, name="x", currency="USD"),
            count=50,
            mean=100,
            stddev=10,
            window_days=30,
            computed_at=datetime.fromtimestamp(computed_at, UTC),
        )
    return Verdict(
        transaction_id=uuid4(),
        anomaly=rule is not None,
        severity=None if rule is None else "high",
        rule=rule,
        z_score=z,
        tail_probability=p,
        baseline=baseline,
        scored_at=datetime.fromtimestamp(T0 + 10, UTC),
    )


def test_the_rows_stored_at_a_moment_are_the_last_reading_at_or_before_it() -> None:
    stored = timeline()
    assert stored.stored_at(T0 - 5) == 0
    assert stored.stored_at(T0 + 1.0) == 400
    assert stored.stored_at(T0 + 1.9) == 400
    assert stored.stored_at(T0 + 60) == 1000
    assert stored.reached(950) == T0 + 2.0
    assert stored.reached(1001) is None


def test_coverage_buckets_take_the_highest_bound_reached() -> None:
    assert [coverage_bucket(s) for s in (1.0, 0.99, 0.95, 0.5, 0.1)] == [
        ">=99%",
        ">=99%",
        "90-99%",
        "50-90%",
        "<50%",
    ]


def test_verdicts_are_counted_by_rule_scope_and_share_of_history_their_baseline_saw() -> None:
    verdicts = [
        verdict("tail", ScopeKind.MERCHANT, T0 + 3.5, z=3.2, p=1e-3),  # after the history
        verdict(None, ScopeKind.MERCHANT, T0 + 2.5, z=0.4, p=0.3),  # 95 %, tail, no alert
        verdict(None, ScopeKind.CATEGORY, T0 + 1.5, z=0.1),  # 40 %, no tail, no alert
        verdict("low_variance", ScopeKind.MERCHANT, T0 + 3.0),
        verdict(None, ScopeKind.MERCHANT, T0 + 3.0),  # a stable scope, no alert
        verdict(None, None, T0),
    ]
    basis = verdict_basis(verdicts, timeline(), history_rows=1000)
    assert basis == {
        "verdicts": 6,
        "rule": {"tail": 2, "log_zscore": 1, "low_variance": 2, "none": 1},
        "scope": {"merchant": 4, "category": 1, "none": 1},
        "without_tail": 4,
        "history_covered": {">=99%": 3, "90-99%": 1, "<50%": 1, "no baseline": 1},
    }


def test_stored_timings_place_the_stored_history_against_the_first_evaluated_post() -> None:
    timings = stored_timings(timeline(), 1000, evaluated_from=T0 + 1.5)
    assert timings == {
        "history_stored_after_evaluated_start_seconds": 1.5,
        "history_stored_share_at_evaluated_start": 0.4,
    }
    never = stored_timings(timeline(), 2000, evaluated_from=T0 + 1.5)
    assert math.isnan(never["history_stored_after_evaluated_start_seconds"])
