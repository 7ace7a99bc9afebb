"""The tail: fitted from a histogram without assuming a shape, evaluated in the detector."""

import math
import random
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker.histogram import bin_bounds, bin_of, histogram
from baseline_worker.stats import DayWeights, Moments, trend
from baseline_worker.tail import TailFit, fit_tail, narrowed
from detector_worker.tail import HeldTail, bin_share, survival
from schemas import TailModel
from schemas.rarity import probability_of, z_equivalent

FIT = TailFit()


def fitted(amounts: list[float]) -> HeldTail:
    model = fit_tail(histogram(amounts), FIT)
    assert model is not None
    return HeldTail.of(model)


def test_bins_are_two_percent_wide_and_hold_their_amounts() -> None:
    for amount in (0.01, 1, 9.99, 12345.67, 9.9e13):
        low, high = bin_bounds(bin_of(amount))
        assert low <= amount * (1 + 1e-12) and amount < high * (1 + 1e-12)
        assert high / low == pytest.approx(1.02)


def test_z_equivalent_reads_as_the_seed_sigma() -> None:
    assert z_equivalent(probability_of(3.0)) == pytest.approx(3.0)
    assert z_equivalent(1 / 5000) == pytest.approx(3.540, abs=1e-3)
    assert z_equivalent(0.0) == pytest.approx(37.5, abs=0.5)  # capped, never infinite


def test_one_bin_has_no_tail() -> None:
    assert fit_tail({bin_of(9.99): 500}, FIT) is None


Draw = Callable[[random.Random], float]
Survival = Callable[[float], float]
FAMILIES: dict[str, tuple[Draw, Survival]] = {
    "log-normal": (
        lambda r: math.exp(r.gauss(3, 0.8)),
        lambda x: 0.5 * math.erfc((math.log(x) - 3) / (0.8 * math.sqrt(2))),
    ),
    "pareto": (lambda r: 20 * r.random() ** (-1 / 2.5), lambda x: min(1.0, (20 / x) ** 2.5)),
    "exponential": (lambda r: 5 + r.expovariate(1 / 30), lambda x: math.exp(-(x - 5) / 30)),
    "weibull": (lambda r: r.weibullvariate(50, 0.6), lambda x: math.exp(-((x / 50) ** 0.6))),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_large_scope_is_calibrated_whatever_its_shape(family: str) -> None:
    """With 5,000 samples, the amount the tail calls 1-in-1,000 is that rare under the true
    distribution within a factor of 2, and 1-in-10,000 (past the data) within 4 (a
    log-normal's z is off by more than 10x there on a power law)."""
    draw, true_survival = FAMILIES[family]
    rng = random.Random(11)
    tail = fitted([draw(rng) for _ in range(5000)])
    for nominal, factor in ((1e-3, 2), (1e-4, 4)):
        amount = amount_at(tail, nominal)
        assert nominal / factor <= true_survival(amount) <= nominal * factor, (nominal, amount)


def amount_at(tail: HeldTail, probability: float) -> float:
    """The amount whose estimated survival is `probability` (bisection; survival is monotone)."""
    low, high = 1e-3, 1e15
    for _ in range(200):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if survival(tail, middle) > probability else (low, middle)
    return high


def test_a_bounded_price_has_no_end_point() -> None:
    """A fitted negative shape would give every amount past the data probability 0, so a
    price that inflates slowly would alert forever: the shape is clamped at 0."""
    rng = random.Random(3)
    tail = fitted([rng.uniform(10, 11) for _ in range(3000)])
    assert tail.shape >= 0
    assert survival(tail, 11.2) > 1e-6


def test_a_rare_second_price_is_not_an_anomaly() -> None:
    """A subscription at 9.99 that is 19.99 for 5 % of customers: 19.99 is 1 in 20."""
    tail = fitted([9.99] * 950 + [19.99] * 50)
    assert survival(tail, 19.99) == pytest.approx(0.05, rel=0.05)
    assert survival(tail, 60) < 1e-4


def test_a_price_bin_holds_its_share() -> None:
    """What a category says of a young merchant's one price: the share of its amounts in
    that price's bin (below the first knot, at most every amount under the bin's top)."""
    tail = fitted([9.99] * 950 + [19.99] * 50)
    assert bin_share(tail, 19.99) == pytest.approx(0.05, rel=0.15)
    # Below the first knot the knots cannot tell 9.99 from 14.99: both get the bound.
    assert bin_share(tail, 9.99) == pytest.approx(0.95, rel=0.05)
    assert bin_share(tail, 14.99) == pytest.approx(0.95, rel=0.05)


histograms = st.dictionaries(
    st.integers(min_value=-200, max_value=1600),
    st.integers(min_value=1, max_value=10**6),
    min_size=2,
    max_size=300,
)
amounts = st.floats(min_value=0.01, max_value=1e14, allow_nan=False)


@settings(max_examples=200)
@given(bins=histograms, a=amounts, b=amounts)
def test_survival_is_a_probability_and_never_rises(
    bins: dict[int, int], a: float, b: float
) -> None:
    model = fit_tail(bins, FIT)
    assert model is not None
    tail = HeldTail.of(model)
    low, high = sorted((a, b))
    p_low, p_high = survival(tail, low), survival(tail, high)
    assert 0 <= p_high <= p_low <= 1
    assert model.shape >= 0 and model.scale > 0


@settings(max_examples=100)
@given(bins=histograms)
def test_a_fitted_tail_round_trips_the_wire(bins: dict[int, int]) -> None:
    model = fit_tail(bins, FIT)
    assert model is not None
    assert TailModel.model_validate_json(model.model_dump_json()) == model
    assert HeldTail.of(model).model() == model


@settings(max_examples=200)
@given(bins=histograms, a=amounts)
def test_a_bin_share_is_a_probability(bins: dict[int, int], a: float) -> None:
    model = fit_tail(bins, FIT)
    assert model is not None
    assert 0 <= bin_share(HeldTail.of(model), a) <= 1


@settings(max_examples=200)
@given(
    bins=histograms,
    log_mean=st.floats(min_value=-3, max_value=30),
    spread=st.floats(min_value=0.05, max_value=1.0),
)
def test_narrowing_keeps_every_sample_and_their_order(
    bins: dict[int, int], log_mean: float, spread: float
) -> None:
    moved = narrowed(bins, log_mean, spread)
    assert sum(moved.values()) == sum(bins.values())
    targets = [narrowed({b: 1}, log_mean, spread) for b in sorted(bins)]
    firsts = [min(t) for t in targets]
    assert firsts == sorted(firsts)  # a larger amount never lands below a smaller one
    assert narrowed(bins, log_mean, 1.0) == bins


def test_a_drifting_window_narrowed_is_as_wide_as_one_day() -> None:
    """30 days of a log-normal (sigma 0.3) whose level rose 2 % a day: the window's
    log-spread is ~0.33; narrowed by the trend's share, its tail is today's (after the
    level is taken out), and 1 in 10,000 is that rare within a factor of 3."""
    rng = random.Random(5)
    days = [[20 * 1.02**d * math.exp(rng.gauss(0, 0.3)) for _ in range(150)] for d in range(30)]
    moments, weights = Moments(), DayWeights()
    for index_, amounts in enumerate(days):
        day = Moments()
        for amount in amounts:
            day += Moments.of(Decimal(str(round(amount, 2))))
        moments, weights = moments + day, weights + DayWeights.of(index_, day)
    level = trend(moments, weights)
    assert 0.8 < level.spread < 0.95
    bins = histogram(a for amounts in days for a in amounts)
    wide = HeldTail.of(_fit(bins))
    narrow = HeldTail.of(_fit(narrowed(bins, moments.log_mean, level.spread)))

    # Today's distribution read at the window's average level: log-normal, sigma 0.3.
    def true_survival(x: float) -> float:
        return 0.5 * math.erfc(math.log(x / math.exp(moments.log_mean)) / (0.3 * math.sqrt(2)))

    at_narrow, at_wide = amount_at(narrow, 1e-4), amount_at(wide, 1e-4)
    assert 1e-4 / 4 <= true_survival(at_narrow) <= 1e-4 * 4
    # Unnarrowed, the amount called 1 in 10,000 is really ~1 in a million: a spike of the
    # size the oracle calls 1 in 10,000 would pass.
    assert true_survival(at_wide) < true_survival(at_narrow) / 10


def _fit(bins: dict[int, int]) -> TailModel:
    model = fit_tail(bins, FIT)
    assert model is not None
    return model
