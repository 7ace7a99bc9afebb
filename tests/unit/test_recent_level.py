"""Today's level bent to the last closed days' medians (baseline_worker.stats.recent_level,
`TailFit.recent_trend_days`; docs/accuracy.md, round 7): a drift that starts mid-window is
read at today's level where one line through the whole window reads it too low, a straight
drift keeps the window's line, and a scope without a trend is left alone."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseline_worker.rollup import MemoryRollup
from baseline_worker.stats import DayMedians, Trend, recent_days, recent_level
from schemas import BaselineScope, ScopeKind, Transaction

CLOSED = 28  # closed days of a 30-day window; today is day 29
TODAY = 29
RECENT = 14
CAFE = BaselineScope(kind=ScopeKind.MERCHANT, name="Cafe", currency="USD")


def medians_of(levels: list[float], counts: list[int]) -> list[DayMedians]:
    return [
        DayMedians.of_day(day, n, m) for day, (m, n) in enumerate(zip(levels, counts, strict=True))
    ]


def window_line(days: list[DayMedians]) -> Trend:
    """The whole window's line through these medians, unshrunk, as `trend` would give it
    for a clear drift (offset 0: it goes through the window's average)."""
    summed = sum(days, DayMedians())
    slope, _ = summed.line()
    return Trend(slope, summed.day_total / summed.count)


def today_log_level(days: list[DayMedians], level: Trend) -> float:
    summed = sum(days, DayMedians())
    bent = recent_level(level, summed, recent_days(days, CLOSED - 1, RECENT))
    return math.log(bent.level_ratio(TODAY))


def test_a_drift_that_starts_mid_window_is_read_at_todays_level() -> None:
    # Flat for 14 days, then 2 % a day: today is 0.30 above the flat start.
    levels = [0.02 * max(day - 14, 0) for day in range(CLOSED)]
    days = medians_of(levels, [50] * CLOSED)
    level = window_line(days)
    average = sum(levels) / CLOSED
    truth = 0.02 * (TODAY - 14) - average
    assert math.log(level.level_ratio(TODAY)) < truth - 0.05  # the one line: too low
    assert today_log_level(days, level) == pytest.approx(truth, abs=1e-6)
    bent = recent_level(level, sum(days, DayMedians()), recent_days(days, CLOSED - 1, RECENT))
    assert bent.slope == pytest.approx(0.02, abs=1e-9)


@given(
    slope=st.floats(-0.03, 0.03).filter(lambda s: abs(s) > 1e-3),
    start=st.floats(-1.0, 1.0),
    counts=st.lists(st.integers(1, 500), min_size=CLOSED, max_size=CLOSED),
)
def test_a_straight_drift_keeps_the_windows_line(
    slope: float, start: float, counts: list[int]
) -> None:
    days = medians_of([start + slope * day for day in range(CLOSED)], counts)
    level = window_line(days)
    assert today_log_level(days, level) == pytest.approx(math.log(level.level_ratio(TODAY)))


def test_no_trend_no_change() -> None:
    days = medians_of([0.02 * max(day - 14, 0) for day in range(CLOSED)], [50] * CLOSED)
    level = Trend(0.0, 13.5)
    summed = sum(days, DayMedians())
    assert recent_level(level, summed, recent_days(days, CLOSED - 1, RECENT)) == level


def test_recent_days_are_the_last_closed_ones() -> None:
    days = medians_of([0.0] * CLOSED, list(range(1, CLOSED + 1)))
    recent = recent_days(days, CLOSED - 1, RECENT)
    assert recent.days == RECENT
    assert recent.count == sum(range(CLOSED - RECENT + 1, CLOSED + 1))


def test_the_replays_rollup_keeps_the_closed_days_medians_one_by_one() -> None:
    """`MemoryRollup` hands the closed days' medians to the fit day by day (what
    `recent_days` selects from), summing to the window's medians; the open days have none."""
    rollup = MemoryRollup(30)
    start = datetime(2025, 3, 1, 12, tzinfo=UTC)
    for day in range(30):
        for amount in ("10.00", "12.00", str(10 + day)):
            rollup.add(
                Transaction(
                    id=uuid4(),
                    amount=Decimal(amount),
                    category="food",
                    merchant="Cafe",
                    transaction_date=start + timedelta(days=day),
                )
            )
    stats = rollup.window(start + timedelta(days=29)).stats(CAFE)
    assert stats is not None
    assert len(stats.closed_medians) == CLOSED
    assert sum(stats.closed_medians, DayMedians()) == stats.medians
    assert recent_days(stats.closed_medians, CLOSED - 1, RECENT).days == RECENT


def test_the_setting_is_refused_where_the_days_medians_are_not_read() -> None:
    # The SQL aggregate gives the window's medians summed, never day by day: the setting
    # would silently do nothing in the baseline worker.
    from baseline_worker.compute import ScopeStats
    from baseline_worker.recompute import _today_level
    from baseline_worker.stats import Moments
    from baseline_worker.tail import TailFit

    days = medians_of([0.02 * d for d in range(CLOSED)], [50] * CLOSED)
    summed_only = ScopeStats(CAFE, Moments(), medians=sum(days, DayMedians()))
    with pytest.raises(ValueError, match="replay only"):
        _today_level(summed_only, Trend(0.02, 14.0), 30, TailFit(recent_trend_days=RECENT))
    assert _today_level(summed_only, Trend(0.02, 14.0), 30, TailFit()) == Trend(0.02, 14.0)
