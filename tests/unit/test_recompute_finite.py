"""A baseline whose moments are not finite is left out of a recompute, not written as JSON
null into the history's NOT NULL columns (which would fail every scope's recompute)."""

import math
from datetime import UTC, datetime
from uuid import uuid4

from baseline_worker.recompute import _finite_only
from schemas import Baseline, BaselineScope, ScopeKind, encode_model


def baseline(name: str, mean: float, log_mean: float | None = 3.0) -> Baseline:
    return Baseline(
        id=uuid4(),
        scope=BaselineScope(kind=ScopeKind.MERCHANT, name=name, currency="EUR"),
        count=40,
        mean=mean,
        stddev=2.0,
        log_mean=log_mean,
        log_stddev=None if log_mean is None else 0.5,
        window_days=30,
        computed_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_a_scope_with_a_moment_that_is_not_finite_is_left_out_and_named() -> None:
    good, old_style = baseline("a", 20.0), baseline("b", 20.0, None)
    broken = baseline("c", math.nan)
    assert b'"mean":null' in encode_model(broken)  # what the history insert would have met
    kept, unusable = _finite_only([good, broken, old_style])
    assert kept == [good, old_style]
    assert unusable == {broken.scope}
