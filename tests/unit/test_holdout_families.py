"""Hold-out families (round 4): each sampler agrees with its survival function (the oracle's
truth) on a large sample, drift included, and each has the shape it claims."""

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.families import AmountFamily, Drift, Gamma, LogNormal
from benchmarks.holdout_families import (
    BurrXII,
    CardChecks,
    CharmPrices,
    PriceList,
    monday_peak,
    weekend_shift,
)
from benchmarks.world import FAMILIES, HOLDOUT_FAMILIES, WorldConfig, build_world

SATURDAY = datetime(2025, 1, 11, 15, tzinfo=UTC)
TUESDAY = datetime(2025, 1, 7, 15, tzinfo=UTC)
SAMPLES = 20_000
KS_BOUND = 1.63 / math.sqrt(SAMPLES)  # Kolmogorov-Smirnov at 1 %, a fixed seed
DRIFT = Drift(0.015, SATURDAY - timedelta(days=20))

HOLDOUTS: list[AmountFamily] = [
    BurrXII(80, 2.5, 0.8),
    BurrXII(40, 1.5, 1.0),  # log-logistic
    PriceList((4.99, 2.49, 8.99, 2.49, 12.99), (3, 2, 1, 1, 0.5), 0.35),
    weekend_shift(Gamma(3, 10), 1.8),
    monday_peak(LogNormal(40, 0.6), 2.0),
    CardChecks(LogNormal(60, 0.8), 0.15),
    CardChecks(LogNormal(60, 0.8), 0.15, drift=DRIFT),
    CharmPrices(LogNormal(25, 0.5)),
    CharmPrices(LogNormal(25, 0.5), drift=DRIFT),
]


def ks_distance(family: AmountFamily, when: datetime) -> float:
    """sup |share of samples >= x - survival(x)| over the samples themselves (ties counted)."""
    rng = random.Random(11)
    amounts = sorted(float(family.sample(rng, when)) for _ in range(SAMPLES))
    distance = 0.0
    for index, amount in enumerate(amounts):
        if index == 0 or amount != amounts[index - 1]:
            empirical = (SAMPLES - index) / SAMPLES
            distance = max(distance, abs(empirical - family.survival(amount, when)))
    return distance


@pytest.mark.parametrize("family", HOLDOUTS, ids=[f"{i}-{f.name}" for i, f in enumerate(HOLDOUTS)])
@pytest.mark.parametrize("when", [TUESDAY, SATURDAY], ids=["tuesday", "saturday"])
def test_the_sampler_follows_the_survival_function(family: AmountFamily, when: datetime) -> None:
    assert ks_distance(family, when) < KS_BOUND


def test_a_survival_off_by_a_cent_in_a_price_list_is_caught() -> None:
    """The bound has teeth on a discrete family: totals read a cent high fail it."""

    class Off(PriceList):
        def _sf(self, x: float) -> float:
            return super()._sf(x + 0.01)

    assert ks_distance(Off((4.99, 2.49, 8.99), (3, 2, 1), 0.35), TUESDAY) > KS_BOUND


def test_a_price_list_charges_only_sums_of_its_prices() -> None:
    family = PriceList((2.50, 4.00), (1, 1), 0.5, max_items=2)
    rng = random.Random(2)
    assert {float(family.sample(rng, TUESDAY)) for _ in range(500)} == {2.5, 4.0, 5.0, 6.5, 8.0}
    # One item (2/3 of baskets) then two: P(8.00) = 1/3 * 1/4.
    assert family.survival(Decimal("8.00"), TUESDAY) == pytest.approx(1 / 12)
    assert family.survival(Decimal("8.01"), TUESDAY) == 0.0


def test_the_weekend_level_moves_only_with_the_weekday() -> None:
    family = weekend_shift(Gamma(3, 10), 2.0)
    assert family.median(SATURDAY) == pytest.approx(2 * family.median(TUESDAY))
    assert family.median(TUESDAY) == family.median(TUESDAY.replace(hour=3))


def test_card_checks_charge_one_unit_that_never_inflates() -> None:
    family = CardChecks(LogNormal(60, 0.8), 0.2, drift=DRIFT)
    later = SATURDAY + timedelta(days=30)
    assert family.survival(Decimal("1.01"), later) == pytest.approx(0.8, abs=1e-3)
    assert family.survival(Decimal("1.00"), later) == pytest.approx(1.0)
    rng = random.Random(3)
    checks = sum(family.sample(rng, later) == Decimal("1.00") for _ in range(5000))
    assert checks == pytest.approx(1000, abs=100)


def test_charm_prices_end_in_99() -> None:
    rng = random.Random(4)
    for family in HOLDOUTS[-2:]:
        assert all(family.sample(rng, SATURDAY) % 1 == Decimal("0.99") for _ in range(500))


@given(index=st.integers(0, len(HOLDOUTS) - 1), low=st.floats(0, 1e5), step=st.floats(0, 1e5))
def test_survival_is_a_probability_that_never_rises(index: int, low: float, step: float) -> None:
    family = HOLDOUTS[index]
    high_p, low_p = family.survival(low + step, SATURDAY), family.survival(low, SATURDAY)
    assert 0.0 <= high_p <= low_p <= 1.0


def test_a_hold_out_world_has_its_own_categories_and_no_drifting_price_list() -> None:
    world = build_world(5, WorldConfig(families=HOLDOUT_FAMILIES))
    assert {m.family.name for m in world} == set(HOLDOUT_FAMILIES)
    categories = {FAMILIES[name][0] for name in HOLDOUT_FAMILIES}
    assert len(categories) == len(HOLDOUT_FAMILIES)
    assert not any(m.drifting for m in world if m.family.name == "price_list")


def test_the_monday_peak_is_a_weekly_shape_unlike_the_weekends() -> None:
    family = monday_peak(LogNormal(40, 0.6), 2.0)
    monday = datetime(2025, 1, 6, 15, tzinfo=UTC)
    levels = [family.level(monday + timedelta(days=d)) for d in range(7)]
    assert levels[0] == max(levels) == 2.0
    assert levels[6] == min(levels) < 1.0 < levels[1] < levels[0]
    assert family.level(monday + timedelta(hours=5)) == 2.0  # nothing by hour
