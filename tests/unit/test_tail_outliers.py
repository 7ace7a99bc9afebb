"""The outlier screen of the tail fit (`TailFit.outlier_share`): spikes left in a window do
not make its tail heavy, and a heavy tail's own largest amounts are not taken for spikes."""

import math
import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from baseline_worker.histogram import bin_of, histogram
from baseline_worker.tail import TailFit, fit_tail, screened
from detector_worker.tail import HeldTail, survival

SCREEN = TailFit(outlier_share=0.004, outlier_alpha=0.001)
NO_SCREEN = TailFit(outlier_share=0.0)


def baskets(rng: random.Random, n: int) -> list[float]:
    return [round(rng.gammavariate(2.5, 20), 2) + 0.01 for _ in range(n)]


def test_spikes_left_in_a_small_window_leave_its_fit() -> None:
    # A grocer with 150 baskets around 50, and two spikes judged medium while it was young:
    # left in, they made its tail heavy enough that a third spike read as medium.
    rng = random.Random(3)
    window = [*baskets(rng, 150), 1061.21, 730.84]
    kept = screened(histogram(window), SCREEN)
    assert sum(kept.values()) == 150
    assert bin_of(1061.21) not in kept and bin_of(730.84) not in kept
    spike = 964.33
    for fit, rarer_than in ((SCREEN, 1e-6), (NO_SCREEN, None)):
        model = fit_tail(histogram(window), fit)
        assert model is not None
        p = survival(HeldTail.of(model), spike)
        if rarer_than is None:
            assert p > 2e-4  # unscreened: not even high
        else:
            assert p < rarer_than


def test_a_clean_window_is_left_as_it_is() -> None:
    rng = random.Random(4)
    for n in (60, 400, 3000):
        bins = histogram(baskets(rng, n))
        assert screened(bins, SCREEN) == bins


def test_a_power_laws_largest_amounts_mostly_stay() -> None:
    # A Lomax of index 1.8 (electronics): its top amounts are far out, and genuinely so.
    # Over 40 windows of 2,500 amounts fewer than one sample a window leaves (23 with this
    # seed: a slightly lighter tail), never the window's body.
    rng = random.Random(5)
    removed = 0
    for _ in range(40):
        amounts = [30 * ((1 - rng.random()) ** (-1 / 1.8) - 1) + 1 for _ in range(2500)]
        removed += 2500 - sum(screened(histogram(amounts), SCREEN).values())
    assert removed < 40


def test_a_window_too_small_to_fit_without_its_top_is_not_screened() -> None:
    bins = histogram([10.0] * 20 + [11.0] * 10 + [500.0])
    assert screened(bins, SCREEN) == bins


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(-200, 900), st.integers(1, 50), min_size=1, max_size=60))
@example({0: 1, 1: 39, 74: 1, 75: 2})  # a spike under a price of two: the spike leaves
def test_the_screen_only_ever_takes_the_top_samples(bins: dict[int, int]) -> None:
    kept = screened(bins, SCREEN)
    assert all(0 < count <= bins[b] for b, count in kept.items())
    gone = {b: bins[b] - kept.get(b, 0) for b in bins if bins[b] != kept.get(b, 0)}
    if gone:
        # Whatever left is above whatever stayed (one bin may keep some of its samples),
        # but a price: a bin of two samples or more stays wherever it is.
        assert all(b <= min(gone) for b in kept if bins[b] < 2)
        assert all(kept.get(b, 0) == bins[b] for b in bins if bins[b] >= 2 and b > min(gone))
        assert sum(gone.values()) <= 10
    assert math.isfinite(sum(kept.values()))


def test_a_price_that_recurs_far_above_the_body_is_never_screened() -> None:
    # A prepaid merchant's $100.00 top-up among ~$17 ones, counted back after two charges
    # (ops/migrations/022): screened out, it would be judged high, kept out and counted back
    # at every charge.
    rng = random.Random(6)
    body = [round(rng.gammavariate(4, 4.25), 2) + 0.01 for _ in range(2000)]
    for copies in (2, 3, 5):
        bins = histogram([*body, *[100.0] * copies])
        assert screened(bins, SCREEN)[bin_of(100.0)] == copies
