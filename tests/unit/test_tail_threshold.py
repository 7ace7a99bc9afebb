"""Where the GPD's threshold sits (TailFit.tail_share, heavy_tail_share; docs/accuracy.md,
round 9): the top 10 % where the tail reads heavy, the top 5 % elsewhere."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker.histogram import histogram
from baseline_worker.tail import TailFit, fit_tail
from schemas import TailModel

ROUND_8 = TailFit()
HEAVY_TOP_10 = TailFit(heavy_tail_share=0.10)


def fitted(bins: dict[int, int], fit: TailFit) -> TailModel:
    model = fit_tail(bins, fit)
    assert model is not None
    return model


def test_a_heavy_tail_is_fitted_over_its_top_10_percent() -> None:
    """A Lomax of alpha 2 (shape 0.5: PWM reads 0.25 or more) gets twice the excesses."""
    rng = random.Random(3)
    bins = histogram(300 * ((1 - rng.random()) ** -0.5 - 1) + 1 for _ in range(4500))
    assert 0.045 <= fitted(bins, ROUND_8).exceedance <= 0.055
    assert 0.095 <= fitted(bins, HEAVY_TOP_10).exceedance <= 0.11


def test_a_light_tail_keeps_its_top_5_percent() -> None:
    """A gamma (PWM reads under 0.25) is fitted exactly as in round 8."""
    rng = random.Random(4)
    bins = histogram(rng.gammavariate(4.0, 15.0) for _ in range(4500))
    assert fitted(bins, HEAVY_TOP_10) == fitted(bins, ROUND_8)


histograms = st.dictionaries(
    st.integers(min_value=-200, max_value=1600),
    st.integers(min_value=1, max_value=10**4),
    min_size=2,
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(bins=histograms)
def test_the_threshold_only_moves_down_and_the_rest_of_the_fit_stays(
    bins: dict[int, int],
) -> None:
    """The heavy tail's threshold is round 8's or a lower one (more excesses, never fewer),
    and the knots, which do not depend on it, are the same."""
    before, after = fitted(bins, ROUND_8), fitted(bins, HEAVY_TOP_10)
    assert after.threshold <= before.threshold
    assert after.exceedance >= before.exceedance
    assert (after.amounts, after.survival) == (before.amounts, before.survival)
    assert after == before or after.threshold < before.threshold
