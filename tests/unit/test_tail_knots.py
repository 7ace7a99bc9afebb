"""The tail's knots at their exact edges, and its levels given at the fit (session 8: the fit
finds the median and the last trusted bin by bisection instead of walking every bin)."""

import pytest

from baseline_worker.histogram import bin_bounds
from baseline_worker.tail import TailFit, TailLevels, fit_tail

# 20 samples, 5 a bin: 20, 15, 10 and 5 samples at or above bins 0 to 3.
EVEN = {0: 5, 1: 5, 2: 5, 3: 5}


def knots(bins: dict[int, int], min_count: int) -> list[tuple[float, float]]:
    # (a top bin of `min_count` samples is a price, past which the tail is the price's:
    # tests/unit/test_tail_price_top.py)
    model = fit_tail(bins, TailFit(knot_min_count=min_count, price_top=False))
    assert model is not None
    return list(zip(model.amounts, model.survival, strict=True))


def test_the_first_knot_is_the_bin_with_exactly_half_at_or_above() -> None:
    assert knots(EVEN, 5) == [(bin_bounds(2)[0], 0.5), (bin_bounds(3)[0], 0.25)]


def test_the_last_knot_is_the_last_bin_with_min_count_at_or_above() -> None:
    assert knots(EVEN, 6) == [(bin_bounds(2)[0], 0.5)]
    assert knots(EVEN, 10) == [(bin_bounds(2)[0], 0.5)]
    assert knots(EVEN, 11) == [(bin_bounds(1)[0], 0.75)]  # no bin at or below half: the last


def test_fewer_samples_than_min_count_keep_the_lowest_bin_as_the_only_knot() -> None:
    assert knots(EVEN, 21) == [(bin_bounds(0)[0], 1.0)]


def test_empty_bins_are_left_out() -> None:
    assert knots({**EVEN, 1: 0, 7: 0}, 5) == knots({0: 5, 2: 5, 3: 5}, 5)


@pytest.mark.parametrize(
    "levels",
    [TailLevels(), TailLevels(1.25, 0.01, [1.1] * 24, [0.9] * 7), TailLevels(0.8, -0.02)],
)
def test_the_levels_given_at_the_fit_are_the_fitted_model_with_them(levels: TailLevels) -> None:
    # (past a top price the levels move a knot: tests/unit/test_tail_price_top.py)
    bins = {b: 1 + (b * 7) % 11 for b in range(150, 260)}
    plain = fit_tail(bins, TailFit(price_top=False))
    with_levels = fit_tail(bins, TailFit(price_top=False), levels)
    assert plain is not None
    expected = plain.model_copy(
        update={
            "level_ratio": levels.level_ratio,
            "level_slope": levels.level_slope,
            "hour_ratios": levels.hour_ratios,
            "weekday_ratios": levels.weekday_ratios,
        }
    )
    assert with_levels == expected
    assert with_levels.model_dump_json() == expected.model_dump_json()
