"""Amount families: each sampler agrees with its own survival function (the oracle's truth),
drift and seasonality move both alike, and the incomplete gamma function is exact."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.families import (
    AmountFamily,
    Drift,
    FixedPrice,
    Gamma,
    LogNormal,
    Lomax,
    Mixture,
    RoundAmounts,
    Seasonal,
    TruncatedNormal,
    Weibull,
    upper_gamma,
)

TUESDAY_NOON = datetime(2025, 1, 7, 12, tzinfo=UTC)
SAMPLES = 3000
# Kolmogorov-Smirnov at 1 %: a correct sampler stays under it 99 times in 100, and the seed is
# fixed, so the test is deterministic; a wrong survival (say, a scale off by 10 %) exceeds it.
KS_BOUND = 1.63 / math.sqrt(SAMPLES)

FAMILIES: list[AmountFamily] = [
    LogNormal(40, 0.6),
    Gamma(2.5, 20),
    Lomax(120, 1.8, floor=5),
    Weibull(80, 0.7),
    TruncatedNormal(30, 15),
    FixedPrice(9.99, 19.98, 0.05),
    Mixture((LogNormal(12, 0.3), LogNormal(80, 0.4)), (0.7, 0.3)),
    Seasonal(Gamma(3, 10)),
    RoundAmounts((10.0, 20.0, 50.0, 100.0), (4, 3, 2, 1)),
    LogNormal(40, 0.6, drift=Drift(0.02, TUESDAY_NOON - timedelta(days=20))),
]


def ks_distance(family: AmountFamily, when: datetime, seed: int = 1) -> float:
    """sup |share of samples >= x - survival(x)| over the samples themselves (ties counted)."""
    rng = random.Random(seed)
    amounts = sorted(float(family.sample(rng, when)) for _ in range(SAMPLES))
    distance, first = 0.0, 0
    for index, amount in enumerate(amounts):
        if index == 0 or amount != amounts[index - 1]:
            first = index
            empirical = (SAMPLES - first) / SAMPLES
            distance = max(distance, abs(empirical - family.survival(amount, when)))
    return distance


@pytest.mark.parametrize("family", FAMILIES, ids=[f"{i}-{f.name}" for i, f in enumerate(FAMILIES)])
def test_the_sampler_follows_the_survival_function(family: AmountFamily) -> None:
    assert ks_distance(family, TUESDAY_NOON) < KS_BOUND


def test_a_wrong_survival_function_is_caught() -> None:
    """The bound has teeth: a sampler 10 % off its survival function fails it."""

    class Off(LogNormal):
        def _sf(self, x: float) -> float:
            return super()._sf(x * 1.1)

    assert ks_distance(Off(40, 0.6), TUESDAY_NOON) > KS_BOUND


def test_drift_raises_the_level_and_survival_follows_it() -> None:
    drifting = LogNormal(40, 0.6, drift=Drift(0.01, TUESDAY_NOON))
    month_later = TUESDAY_NOON + timedelta(days=30)
    assert drifting.median(month_later) == pytest.approx(40 * 1.01**30, rel=1e-6)
    assert drifting.survival(100, month_later) > drifting.survival(100, TUESDAY_NOON)
    assert drifting.survival(100, TUESDAY_NOON - timedelta(days=5)) == pytest.approx(
        drifting.survival(100, TUESDAY_NOON)
    )
    assert ks_distance(drifting, month_later) < KS_BOUND


def test_seasonality_moves_the_level_by_weekday_and_hour() -> None:
    seasonal = Seasonal(Gamma(3, 10))
    saturday_evening = datetime(2025, 1, 11, 19, tzinfo=UTC)
    tuesday_night = datetime(2025, 1, 7, 3, tzinfo=UTC)
    assert seasonal.median(saturday_evening) > 1.5 * seasonal.median(tuesday_night)
    for when in (saturday_evening, tuesday_night):
        assert ks_distance(seasonal, when) < KS_BOUND


def test_a_fixed_price_has_a_step_survival() -> None:
    price = FixedPrice(9.99, 19.98, 0.05)
    assert price.survival(9.99, TUESDAY_NOON) == 1.0
    assert price.survival(10.00, TUESDAY_NOON) == pytest.approx(0.05)
    assert price.survival(19.98, TUESDAY_NOON) == pytest.approx(0.05)
    assert price.survival(19.99, TUESDAY_NOON) == 0.0
    assert FixedPrice(4.99).survival(5.00, TUESDAY_NOON) == 0.0
    assert FixedPrice(4.99).median(TUESDAY_NOON) == pytest.approx(4.99)


def test_round_amounts_have_steps_at_their_values() -> None:
    rounds = RoundAmounts((10.0, 20.0, 50.0, 100.0), (4, 3, 2, 1))
    assert rounds.survival(10, TUESDAY_NOON) == 1.0
    assert rounds.survival(10.01, TUESDAY_NOON) == pytest.approx(0.6)
    assert rounds.survival(100, TUESDAY_NOON) == pytest.approx(0.1)
    assert rounds.survival(100.01, TUESDAY_NOON) == 0.0


def test_the_smallest_amount_is_always_reached() -> None:
    for family in FAMILIES:
        assert family.survival(0.01, TUESDAY_NOON) == 1.0


@pytest.mark.parametrize("family", FAMILIES[:5], ids=lambda f: f.name)
def test_half_the_amounts_reach_the_median(family: AmountFamily) -> None:
    median = family.median(TUESDAY_NOON)
    assert family._sf(median / family.level(TUESDAY_NOON)) == pytest.approx(0.5, abs=1e-6)


@given(
    index=st.integers(0, len(FAMILIES) - 1),
    low=st.floats(0.0, 1e6),
    step=st.floats(0.0, 1e6),
)
def test_survival_is_a_probability_that_never_rises(index: int, low: float, step: float) -> None:
    family = FAMILIES[index]
    high_p, low_p = family.survival(low + step, TUESDAY_NOON), family.survival(low, TUESDAY_NOON)
    assert 0.0 <= high_p <= low_p <= 1.0


@pytest.mark.parametrize(
    ("a", "x", "expected"),
    [
        (1.0, 3.0, math.exp(-3)),
        (1.0, 50.0, math.exp(-50)),
        (3.0, 20.0, math.exp(-20) * (1 + 20 + 200)),
        (3.0, 0.5, math.exp(-0.5) * (1 + 0.5 + 0.125)),
        (0.5, 0.3, math.erfc(math.sqrt(0.3))),
        (0.5, 40.0, math.erfc(math.sqrt(40.0))),
    ],
)
def test_upper_gamma_matches_closed_forms(a: float, x: float, expected: float) -> None:
    assert upper_gamma(a, x) == pytest.approx(expected, rel=1e-9)
