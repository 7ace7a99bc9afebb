"""The GPD shape's estimators (TailFit.shape_estimator; docs/accuracy.md, round 8)."""

import math
import random
import statistics
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker.histogram import histogram
from baseline_worker.settings import BaselineSettings
from baseline_worker.tail import ShapeEstimator, TailFit, fit_tail


def raw_shape(amounts: list[float], estimator: ShapeEstimator) -> float:
    """The estimate alone: no prior, no margin, no outlier screen, no truncation at the high
    edge (these windows keep their top; only the clamp to [0, 0.9])."""
    fit = TailFit(
        shape_estimator=estimator,
        prior_weight=0.0,
        shape_margin=0.0,
        outlier_share=0.0,
        truncated_at=0.0,
    )
    model = fit_tail(histogram(amounts), fit)
    assert model is not None
    return model.shape


def lomax(rng: random.Random, alpha: float, n: int) -> list[float]:
    """Past any threshold a Lomax's excesses are a GPD of shape 1 / alpha, exactly."""
    return [300.0 * ((1.0 - rng.random()) ** (-1.0 / alpha) - 1.0) + 1.0 for _ in range(n)]


@pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0])
def test_zhang_reads_a_heavy_power_law_shape_without_pwm_s_bias(alpha: float) -> None:
    """Over 30 scopes of 4,000 Lomax amounts (200 excesses each), Zhang & Stephens' shape is
    right on average within 0.04, at alpha 1.25 where probability-weighted moments read
    0.1 too light (0.69 for 0.8: a 1-in-10,000 amount read too rare)."""
    rng = random.Random(alpha)
    scopes = [lomax(rng, alpha, 4000) for _ in range(30)]
    for estimator in ("zhang", "hybrid"):
        mean = statistics.mean(raw_shape(amounts, estimator) for amounts in scopes)
        assert mean == pytest.approx(1 / alpha, abs=0.04), estimator
    if alpha == 1.25:
        assert statistics.mean(raw_shape(a, "pwm") for a in scopes) < 1 / alpha - 0.06


def test_hybrid_keeps_pwm_on_a_light_tail() -> None:
    """Where PWM reads a shape under 0.25 (a gamma: a light tail), the hybrid is PWM exactly."""
    rng = random.Random(4)
    amounts = [rng.gammavariate(4.0, 15.0) for _ in range(4000)]
    assert raw_shape(amounts, "hybrid") == raw_shape(amounts, "pwm") < 0.25


def test_hybrid_keeps_pwm_s_heavy_reading_where_zhang_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PWM reads a heavy tail and Zhang & Stephens give no estimate (a degenerate grid): the
    hybrid keeps PWM's shape, not the prior's (it fell back to the prior, with no excesses)."""
    rng = random.Random(5)
    amounts = lomax(rng, 1.5, 4000)
    monkeypatch.setattr("baseline_worker.tail._zhang_shape", lambda _: None)
    assert raw_shape(amounts, "hybrid") == raw_shape(amounts, "pwm") >= 0.25


amounts_strategy = st.lists(
    st.floats(min_value=0.01, max_value=1e9, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(amounts=amounts_strategy, estimator=st.sampled_from(get_args(ShapeEstimator)))
def test_every_estimator_fits_a_finite_tail_on_any_amounts(
    amounts: list[float], estimator: ShapeEstimator
) -> None:
    model = fit_tail(histogram(amounts), TailFit(shape_estimator=estimator))
    if model is None:
        return
    assert 0.0 <= model.shape <= 0.9
    assert math.isfinite(model.scale) and model.scale > 0


def test_the_baseline_worker_fits_with_the_replay_s_estimator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Production's default is the one the replay chose (TailFit's), and the variable sets it."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    assert BaselineSettings().baseline_shape_estimator == TailFit().shape_estimator == "hybrid"
    monkeypatch.setenv("BASELINE_SHAPE_ESTIMATOR", "pwm")
    assert BaselineSettings().baseline_shape_estimator == "pwm"
