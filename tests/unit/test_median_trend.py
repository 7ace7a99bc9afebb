"""The level's trend through the closed days' medians of ln(amount) (baseline_worker.stats:
`trend` through the medians, `DayMedians`, `day_log_median`): a drifting scope keeps its
drift, a point mass that never moves does not flatten it (the line through every ln(amount)
it does), and a scope that does not drift gets no trend."""

import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker.histogram import bin_bounds, bin_of_log
from baseline_worker.stats import (
    DayMedians,
    DayWeights,
    Moments,
    Trend,
    day_log_median,
    trend,
)

DAYS, CLOSED = 30, 28  # the window, and its closed days (production's medians' days)
PER_DAY = 1000
LEVEL = 4.0  # ln(amount) of the body's median on day 0: about 55


@dataclass(frozen=True)
class Window:
    moments: Moments
    weights: DayWeights
    medians: DayMedians

    def by_medians(self) -> Trend:
        return trend(self.moments, self.weights, self.medians, "medians")

    def by_means(self) -> Trend:
        return trend(self.moments, self.weights)


def window(seed: int, drift: float, sigma: float, mass: float = 0.0) -> Window:
    """30 days of `PER_DAY` amounts: log-normal around a level moving `drift` a day, but for
    a share `mass` of exactly 1.00 (card checks) that never moves."""
    rng = random.Random(seed)
    return summed(
        [
            0.0 if rng.random() < mass else rng.gauss(LEVEL + drift * day, sigma)
            for _ in range(PER_DAY)
        ]
        for day in range(DAYS)
    )


def summed(days: Iterable[list[float]]) -> Window:
    """The window of these days' ln(amount)s, the first day first; the medians of the
    closed days only."""
    moments, weights, medians = Moments(), DayWeights(), DayMedians()
    for day, logs in enumerate(days):
        today = Moments(len(logs), log_total=sum(logs), log_total_sq=sum(x * x for x in logs))
        moments += today
        weights += DayWeights.of(day, today)
        if day < CLOSED:
            bins = Counter(bin_of_log(x) for x in logs)
            medians += DayMedians.of_day(day, len(logs), day_log_median(bins))
    return Window(moments, weights, medians)


def standard_error(sigma: float, mass: float) -> float:
    """The slope's standard error through days' medians of `PER_DAY` samples: a median's
    variance is 1 / (4 f^2 n), f the density of ln(amount) at the median (of the body's
    share 1 - mass, at its quantile (0.5 - mass) / (1 - mass))."""
    z = _normal_quantile((0.5 - mass) / (1 - mass))
    density = (1 - mass) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / sigma
    day_variance = (CLOSED**2 - 1) / 12
    return math.sqrt(1 / (4 * density**2) / (PER_DAY * CLOSED * day_variance))


def _normal_quantile(p: float) -> float:
    low, high = -10.0, 10.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if 0.5 * math.erfc(-middle / math.sqrt(2)) < p else (low, middle)
    return low


drifts = st.one_of(st.floats(0.02, 0.04), st.floats(-0.04, -0.02))
sigmas = st.floats(0.5, 1.0)
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seeds, drifts, sigmas)
def test_a_drifting_log_normal_keeps_its_trend(seed: int, drift: float, sigma: float) -> None:
    level = window(seed, drift, sigma).by_medians()
    assert abs(level.slope - drift) < 5 * standard_error(sigma, 0.0)
    assert level.spread < 1.0  # the trend narrows the window's spread
    assert level.level_ratio(DAYS - 1) == (
        min(max(math.exp(level.slope * (DAYS - 1 - level.mean_day)), 0.5), 2.0)
    )


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seeds, drifts, sigmas)
def test_a_point_mass_at_one_does_not_flatten_the_bodys_drift(
    seed: int, drift: float, sigma: float
) -> None:
    """30 % of the amounts at 1.00: the line through the medians has the body's slope; the
    line through every ln(amount) has about 70 % of it (why round 6 was built)."""
    scope = window(seed, drift, sigma, mass=0.3)
    assert abs(scope.by_medians().slope - drift) < 5 * standard_error(sigma, 0.3)
    assert abs(scope.by_means().slope) < 0.8 * abs(drift)


def test_no_drift_gives_no_trend() -> None:
    """Without drift, with and without a point mass: the slope is shrunk to 0 unless it
    stands ~2 standard errors out (about 1 window in 20), and never far from 0."""
    trended = 0
    for seed in range(40):
        sigma, mass = 0.5 + (seed % 6) / 10, 0.3 * (seed % 2)
        slope = window(seed, 0.0, sigma, mass).by_medians().slope
        assert abs(slope) < 4 * standard_error(sigma, mass)
        trended += slope != 0
    assert trended <= 6


def test_a_window_of_a_few_days_gets_no_trend() -> None:
    """Fewer than 3 closed days, or days spread over less than about a week: no slope."""
    two_days = DayMedians.of_day(0, 50, 1.0) + DayMedians.of_day(1, 50, 2.0)
    assert two_days.slope() == 0.0
    week = sum((DayMedians.of_day(d, 50, 0.1 * d) for d in range(5)), DayMedians())
    assert week.slope() == 0.0  # day variance 2 < 4
    month = sum((DayMedians.of_day(d, 50, 0.1 * d) for d in range(28)), DayMedians())
    assert math.isclose(month.slope(), 0.1, rel_tol=1e-12)  # on the line: fully trusted


@given(
    st.lists(
        st.tuples(st.integers(0, 29), st.integers(1, 500), st.floats(-5, 15)),
        min_size=1,
        max_size=30,
    ),
    st.integers(-5_000, 15_000),
)
def test_days_counted_from_another_origin_shift_exactly(
    days: list[tuple[int, int, float]], offset: int
) -> None:
    """The SQL keeps the days from an epoch, the trend counts them from the window's first
    day: `shifted` gives the sums of the days counted from there (the integer ones exactly)."""
    from_epoch = sum((DayMedians.of_day(d + offset, n, m) for d, n, m in days), DayMedians())
    from_first = sum((DayMedians.of_day(d, n, m) for d, n, m in days), DayMedians())
    shifted = from_epoch.shifted(offset)
    assert (shifted.days, shifted.count, shifted.day_total, shifted.day_sq_total) == (
        from_first.days,
        from_first.count,
        from_first.day_total,
        from_first.day_sq_total,
    )
    scale = sum(n * (abs(m) + 1) * (abs(d + offset) + 1) for d, n, m in days)
    assert math.isclose(shifted.day_median_total, from_first.day_median_total, abs_tol=1e-9 * scale)
    assert shifted.median_total == from_first.median_total


@given(st.lists(st.floats(-3, 8), min_size=1, max_size=200))
def test_a_days_median_falls_in_its_middle_samples_bins(logs: list[float]) -> None:
    """The median of a day's histogram lies between the lower edge of the bin of its lower
    middle sample and the upper edge of the bin of its upper middle sample."""
    ordered = sorted(logs)
    lower, upper = ordered[(len(logs) - 1) // 2], ordered[len(logs) // 2]
    median = day_log_median(Counter(bin_of_log(x) for x in logs))
    assert math.log(bin_bounds(bin_of_log(lower))[0]) - 1e-12 <= median
    assert median <= math.log(bin_bounds(bin_of_log(upper))[1]) + 1e-12


def test_a_day_all_at_one_price_has_its_bins_middle() -> None:
    assert day_log_median(Counter({10: 7})) == math.log(1.02) * 10.5
    assert day_log_median(Counter()) == 0.0


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seeds, drifts, st.floats(0.5, 0.7))
def test_the_sharper_line_is_the_medians_under_a_point_mass(
    seed: int, drift: float, sigma: float
) -> None:
    """`through="sharper"` takes the line with the larger t²: under a point mass the
    medians' (the means' is flattened and its residual widened by the mass; for a body as
    wide as sigma 1 the medians' noise can outweigh that, and the means' line may be taken);
    without one, either line, each close to the drift."""
    scope = window(seed, drift, sigma, mass=0.3)
    assert trend(scope.moments, scope.weights, scope.medians, "sharper") == scope.by_medians()
    body = window(seed, drift, sigma)
    sharper = trend(body.moments, body.weights, body.medians, "sharper")
    assert sharper in (body.by_means(), body.by_medians())
    assert abs(sharper.slope - drift) < 5 * standard_error(sigma, 0.0)


def moving_price_window(per_day: int, moving: int) -> Window:
    """Each day `moving` of `per_day` charges at one price rising 2 % a day, the others at
    10.00: the days' medians sit on the moving price, so their line has no scatter at all."""
    fixed = math.log(10.0)
    return summed(
        [fixed + 0.02 * (day - 14.5)] * moving + [fixed] * (per_day - moving) for day in range(DAYS)
    )


def test_no_line_leaves_less_spread_than_the_least_squares_line() -> None:
    """The medians' line can be steeper than every sample's least-squares line; what it is
    said to explain is bounded by what that line explains, so the histogram is not narrowed
    to nothing (it was to a spread of 7e-6: one bin, no tail fitted)."""
    for per_day, moving in ((6, 4), (200, 101)):
        window = moving_price_window(per_day, moving)
        chosen = trend(window.moments, window.weights, window.medians, "sharper")
        least_squares = window.by_means()
        assert chosen.slope > least_squares.slope  # the medians' line was taken
        n = window.moments.count
        mean_day = window.weights.days / n
        day_variance = window.weights.days_sq / n - mean_day**2
        covariance = window.weights.log_days / n - mean_day * window.moments.log_total / n
        log_variance = window.moments.log_stddev**2
        residual = log_variance - covariance**2 / day_variance
        assert chosen.spread >= math.sqrt(residual / log_variance) * (1 - 1e-9)
        assert chosen.spread > 0.5
