"""Where the GPD's threshold sits (TailFit.tail_share, heavy_tail_share; docs/accuracy.md,
round 9): the top 10 % where the tail reads heavy, the top 5 % elsewhere; on a lattice of
metered amounts, half a step below the threshold's bin (round 16)."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker import tail
from baseline_worker.histogram import bin_bounds, bin_of, histogram
from baseline_worker.tail import TailFit, fit_tail
from detector_worker.scoring import ScoringConfig
from detector_worker.tail import HeldTail, survival
from schemas import TailModel
from schemas.rarity import z_equivalent

ROUND_8 = TailFit()
HEAVY_TOP_10 = TailFit(heavy_tail_share=0.10)
HIGH, CRITICAL = ScoringConfig().tiers.high, ScoringConfig().tiers.critical


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


def edge_threshold(keys: list[int], counts: list[int], top: int) -> float:
    """Round 15's threshold: the lower edge of the threshold's bin, lattice or not."""
    return bin_bounds(keys[top])[0]


def parking(rate: float) -> list[float]:
    """A car park charging `rate` a started hour up to 8 hours, over a month (the blind
    stream's CityPark #1 at 2.75)."""
    counts = (298, 170, 111, 55, 36, 22, 15, 5)
    return [rate * hours for hours, count in enumerate(counts, start=1) for _ in range(count)]


@pytest.mark.parametrize("rate", [2.0, 2.75, 3.5, 4.0])
def test_a_jump_past_a_metered_lattice_reads_high(
    rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A car park with three earlier spikes in its window (30.08, 36.87 and 52.49 at 2.75,
    as in the blind stream), then a jump to about three times its top unit (61.57): over
    the threshold bin's edge, a third of the excesses sit at 0 and the rest at whole steps,
    which read as a very heavy tail (Zhang & Stephens' shape clamped to 0.9) and the jump
    as medium; half a step below, the same lattice reads light and the jump critical."""
    spikes = [rate * 8 * factor for factor in (1.37, 1.68, 2.39)]
    window, jump = [*parking(rate), *spikes], rate * 8 * 2.8
    corrected = fitted(histogram(window), ROUND_8)
    assert z_equivalent(survival(HeldTail.of(corrected), jump)) >= CRITICAL
    monkeypatch.setattr(tail, "_threshold", edge_threshold)
    at_the_edge = fitted(histogram(window), ROUND_8)
    assert z_equivalent(survival(HeldTail.of(at_the_edge), jump)) < HIGH
    assert corrected.threshold < at_the_edge.threshold


def test_the_lattice_threshold_lies_between_its_point_and_the_one_below() -> None:
    window = parking(2.75)
    model = fitted(histogram(window), ROUND_8)
    # The top 5 % of 712 begins at 16.50 (43 at or above); half a step down on the
    # lattice is sqrt(13.75 * 16.50), within a bin's rounding.
    assert model.threshold == pytest.approx(math.sqrt(13.75 * 16.50), rel=0.02)
    assert model.threshold < bin_bounds(bin_of(16.50))[0]


@pytest.mark.parametrize("seed", range(4))
def test_a_continuous_scope_keeps_its_edge_threshold(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Amounts to the cent from a gamma and a Lomax: the threshold's bin has neighbours, and
    the fit is the one the edge gives."""
    rng = random.Random(seed)
    for window in (
        [round(rng.gammavariate(4.0, 15.0), 2) for _ in range(3000)],
        [round(20 * ((1 - rng.random()) ** -0.5 - 1) + 1, 2) for _ in range(3000)],
    ):
        corrected = fitted(histogram(window), ROUND_8)
        with monkeypatch.context() as edge:
            edge.setattr(tail, "_threshold", edge_threshold)
            assert fitted(histogram(window), ROUND_8) == corrected


def test_a_price_list_without_a_point_above_keeps_its_edge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two prices, the threshold at the upper one: nothing above it to measure a step by,
    and the upper price is a price (its excesses are all 0 either way)."""
    window = [4.70] * 600 + [11.75] * 60
    corrected = fitted(histogram(window), ROUND_8)
    monkeypatch.setattr(tail, "_threshold", edge_threshold)
    assert fitted(histogram(window), ROUND_8) == corrected


@settings(max_examples=500, deadline=None)
@given(bins=histograms, share=st.floats(min_value=0.0, max_value=1.0))
def test_the_threshold_stays_between_its_bin_and_the_one_below(
    bins: dict[int, int], share: float
) -> None:
    """Never above the threshold bin's lower edge, never into the bin below: the samples
    and their order above and below the threshold are the edge's."""
    keys = sorted(bins)
    top = min(max(round(share * len(keys)), 1), len(keys) - 1)
    counts = [bins[b] for b in keys]
    threshold = tail._threshold(keys, counts, top)
    assert bin_bounds(keys[top - 1])[1] <= threshold <= bin_bounds(keys[top])[0]
