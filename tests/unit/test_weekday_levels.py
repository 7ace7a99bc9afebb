"""A scope's weekday level (baseline_worker.stats.weekday_ratios) and how the detector reads
an amount against it (detector_worker.tail.survival on the transaction's UTC day), with the
hour's level times the weekday's."""

import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker.compute import ScopeStats
from baseline_worker.recompute import to_baseline
from baseline_worker.rollup import MemoryRollup
from baseline_worker.stats import (
    HOURS,
    WEEKDAYS,
    Moments,
    WeekdayLevels,
    level_spread,
    weekday_ratios,
)
from baseline_worker.tail import TailFit
from detector_worker.held_baseline import HeldBaseline
from detector_worker.tail import HeldTail, survival
from schemas import Baseline, BaselineScope, ScopeKind, TailModel, Transaction

# The seasonal family's weekday factors (benchmarks/families.py), Monday first.
WEEK = (0.9, 0.9, 0.95, 1.0, 1.1, 1.35, 1.2)
FLAT = (1.0,) * WEEKDAYS
HOUR_PROFILE = (0.7,) * 7 + (0.85,) * 4 + (1.0,) * 6 + (1.4,) * 5 + (0.9,) * 2
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
CAFE = BaselineScope(kind=ScopeKind.MERCHANT, name="Cafe", currency="USD")


def sums(samples: list[tuple[int, float]]) -> tuple[Moments, WeekdayLevels]:
    """Moments and weekday levels of (weekday, amount) samples."""
    moments, counts, logs = Moments(), [0] * WEEKDAYS, [0.0] * WEEKDAYS
    for weekday, amount in samples:
        moments += Moments.of(Decimal(str(amount)))
        counts[weekday] += 1
        logs[weekday] += math.log(Decimal(str(amount)))
    return moments, WeekdayLevels(tuple(counts), tuple(logs))


def weekly(n: int, sigma: float, week: tuple[float, ...], seed: int) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        weekday = rng.randrange(WEEKDAYS)
        out.append((weekday, round(20 * week[weekday] * math.exp(rng.gauss(0, sigma)), 2)))
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(3, 3000),
    sigma=st.floats(0.05, 1.5),
    amplitude=st.floats(0.0, 4.0),
)
def test_weekday_levels_stay_in_a_bounded_range(
    seed: int, n: int, sigma: float, amplitude: float
) -> None:
    week = tuple(1 + amplitude * (f - 1) for f in WEEK)
    ratios = weekday_ratios(*sums(weekly(n, sigma, week, seed)))
    assert ratios is None or (len(ratios) == WEEKDAYS and all(0.5 <= r <= 2.0 for r in ratios))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 5000), sigma=st.floats(0.05, 1.5))
def test_weekdays_alike_keep_no_level_beyond_noise(seed: int, n: int, sigma: float) -> None:
    # As for hours: past p < 0.001 about once in a thousand scopes, and then no further from
    # 1 than a weekday's mean's noise.
    ratios = weekday_ratios(*sums(weekly(n, sigma, FLAT, seed)))
    noise = sigma / math.sqrt(max(n / WEEKDAYS, 1.0))
    assert ratios is None or all(abs(math.log(r)) < 0.05 + 3 * noise for r in ratios)


def test_weekdays_alike_keep_no_level() -> None:
    assert weekday_ratios(*sums(weekly(4000, 0.6, FLAT, seed=1))) is None


def test_a_weekly_scope_finds_its_weekdays() -> None:
    ratios = weekday_ratios(*sums(weekly(3000, 0.5, WEEK, seed=3)))
    assert ratios is not None
    mean = math.exp(sum(math.log(f) for f in WEEK) / WEEKDAYS)  # over the log mean
    for weekday in range(WEEKDAYS):
        assert ratios[weekday] == pytest.approx(WEEK[weekday] / mean, rel=0.06)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), amplitude=st.floats(0.0, 4.0), spread=st.floats(0.3, 1.0))
def test_taking_out_the_weekdays_only_narrows(seed: int, amplitude: float, spread: float) -> None:
    moments, weekdays = sums(weekly(2000, 0.4, tuple(1 + amplitude * (f - 1) for f in WEEK), seed))
    ratios = weekday_ratios(moments, weekdays)
    assert level_spread(moments, weekdays, FLAT, spread) == pytest.approx(spread)
    if ratios is not None:
        assert 0.3 - 1e-9 <= level_spread(moments, weekdays, ratios, spread) <= spread


def replayed_stats(
    week: tuple[float, ...], hours: bool = False, drift: float = 0.0
) -> tuple[ScopeStats, datetime]:
    """A merchant's window of 30 days through the replay's rollup (MemoryRollup), its level
    times `week`'s factor of the day (and the seasonal family's hour's, if `hours`), rising
    by `drift` a day."""
    rollup, rng = MemoryRollup(30), random.Random(7)
    for day in range(30):
        for _ in range(150):
            hour = rng.randrange(HOURS)
            at = START + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
            level = week[at.weekday()] * (HOUR_PROFILE[hour] if hours else 1.0) * (1 + drift) ** day
            rollup.add(
                Transaction(
                    id=uuid4(),
                    amount=Decimal(f"{20 * level * math.exp(rng.gauss(0, 0.3)):.2f}"),
                    category="food",
                    merchant="Cafe",
                    transaction_date=at,
                )
            )
    now = START + timedelta(days=29, hours=23)
    stats = rollup.window(now).stats(CAFE)
    assert stats is not None
    return stats, now


def replayed(week: tuple[float, ...], fit: TailFit, hours: bool = False) -> Baseline:
    stats, now = replayed_stats(week, hours)
    return to_baseline(stats, 30, now, fit)


def test_a_drift_is_not_read_as_a_weekly_pattern() -> None:
    # 2 % a day: the four closed Mondays sit 6 days (13 %) below the four closed Sundays.
    # Read without the trend taken out of each weekday, that passes the test for a weekly
    # pattern; with it, the weekdays are alike and the trend alone moves the level.
    stats, now = replayed_stats(FLAT, drift=0.02)
    assert weekday_ratios(stats.moments, stats.weekdays) is not None
    tail = to_baseline(stats, 30, now, TailFit()).tail
    assert tail is not None and tail.weekday_ratios is None and tail.level_slope > 0.015


SATURDAY, MONDAY = date(2026, 2, 7).toordinal(), date(2026, 2, 9).toordinal()


def test_an_amount_is_read_against_its_weekdays_level() -> None:
    strong = (0.7, 0.7, 0.75, 0.8, 0.9, 1.6, 1.4)
    baseline = replayed(strong, TailFit())  # weekday levels on by default
    tail = HeldBaseline.of(baseline).tail
    assert tail is not None and tail.weekday_levels is not None
    assert tail.weekday_levels[5] > 1.8 * tail.weekday_levels[0]  # Saturday over Monday
    # 40 is ordinary on a Saturday, rare on a Monday.
    assert survival(tail, 40.0, day=MONDAY) < survival(tail, 40.0) / 5
    assert survival(tail, 40.0) < survival(tail, 40.0, day=SATURDAY)
    assert HeldTail.of(tail.model(), baseline.computed_at) == tail  # the wire keeps it


def test_hour_and_weekday_levels_multiply() -> None:
    tail = HeldBaseline.of(replayed(WEEK, TailFit(), hours=True)).tail
    assert tail is not None and tail.hour_levels is not None and tail.weekday_levels is not None
    # Read at Saturday 19h, an amount is the same as that amount over the weekday's factor
    # read at 19h of no particular day (the baseline's own day has no trend to apply here).
    plain = replace_weekdays(tail, None)
    for amount in (30.0, 60.0, 120.0):
        factor = tail.weekday_levels[5]
        assert survival(tail, amount, 19, SATURDAY) == pytest.approx(
            survival(plain, amount / factor, 19, SATURDAY), rel=1e-9
        )


def replace_weekdays(tail: HeldTail, levels: None) -> HeldTail:
    model = tail.model().model_copy(update={"weekday_ratios": levels, "level_slope": 0.0})
    return HeldTail.of(model)


def test_without_weekday_levels_every_day_reads_the_same() -> None:
    for fit, week in ((TailFit(weekday_levels=False), WEEK), (TailFit(), FLAT)):
        tail = HeldBaseline.of(replayed(week, fit)).tail
        assert tail is not None and tail.weekday_levels is None
        assert survival(tail, 45.0, day=MONDAY) == survival(tail, 45.0, day=SATURDAY)


def test_the_replay_keeps_the_weekdays_of_closed_days_only() -> None:
    # As baseline_window_weekdays (ops/migrations/018): the window but yesterday and today.
    rollup = MemoryRollup(30)
    for day in (0, 27, 28, 29):  # a Monday, then day 27 (a Sunday); 28 and 29 are open
        rollup.add(
            Transaction(
                id=uuid4(),
                amount=Decimal("10"),
                category="food",
                merchant="Cafe",
                transaction_date=START + timedelta(days=day, hours=5),
            )
        )
    stats = rollup.window(START + timedelta(days=29, hours=12)).stats(CAFE)
    assert stats is not None and stats.moments.count == 4
    assert stats.weekdays.counts == (1, 0, 0, 0, 0, 0, 1)
    assert stats.weekdays.log_totals[6] == pytest.approx(math.log(10))


@given(st.integers(1, 800_000))
def test_the_weekday_of_a_date_ordinal(ordinal: int) -> None:
    # The detector reads the weekday off the ordinal it has anyway, without building a date.
    week = (2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    model = TailModel(
        amounts=[10.0], survival=[0.5], threshold=10.0, exceedance=0.5, shape=0.1, scale=5.0
    )
    tail = HeldTail.of(model.model_copy(update={"weekday_ratios": list(week)}))
    monday = date.fromordinal(ordinal).weekday() == 0
    assert (survival(tail, 40.0, day=ordinal) > survival(tail, 40.0)) == monday


def test_an_old_baseline_without_weekdays_still_reads() -> None:
    old = {"amounts": [10.0], "survival": [0.5], "threshold": 10.0, "exceedance": 0.5}
    model = TailModel.model_validate({**old, "shape": 0.1, "scale": 5.0})
    assert model.weekday_ratios is None
    with pytest.raises(ValueError, match="at least 7"):
        TailModel.model_validate({**old, "shape": 0.1, "scale": 5.0, "weekday_ratios": [1.0]})
