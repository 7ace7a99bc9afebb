"""A drifting scope's amounts are read at the level of their own day: a transaction dated
before the baseline's day (a backfill, a late upload, a replay in fast time) is judged by
its day's level, not today's, and one dated today is read exactly as before."""

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseline_worker.recompute import to_baseline
from baseline_worker.rollup import MemoryRollup
from detector_worker.held_baseline import HeldBaseline
from detector_worker.tail import HeldTail, survival
from schemas import BaselineScope, ScopeKind, Transaction

START = datetime(2026, 3, 2, tzinfo=UTC)
NOW = START + timedelta(days=29, hours=23)
CAFE = BaselineScope(kind=ScopeKind.MERCHANT, name="Cafe", currency="USD")
DRIFT = 0.02  # the level grows 2 % a day


def drifting_baseline(drift: float = DRIFT, computed_at: datetime = NOW) -> HeldBaseline:
    rollup, rng = MemoryRollup(30), random.Random(11)
    for day in range(30):
        for _ in range(200):
            amount = 20 * math.exp(drift * day + rng.gauss(0, 0.15))
            rollup.add(
                Transaction(
                    id=uuid4(),
                    amount=Decimal(f"{amount:.2f}"),
                    category="food",
                    merchant="Cafe",
                    transaction_date=START + timedelta(days=day, hours=rng.randrange(24)),
                )
            )
    stats = rollup.window(NOW).stats(CAFE)
    assert stats is not None
    return HeldBaseline.of(to_baseline(stats, 30, computed_at, last_day=NOW.date()))


def day(offset: int) -> int:
    return (NOW + timedelta(days=offset)).toordinal()


def test_an_amount_a_week_old_is_read_at_its_weeks_level() -> None:
    tail = drifting_baseline().tail
    assert tail is not None
    assert tail.level_slope == pytest.approx(DRIFT, rel=0.15)
    # Ordinary today (the level has grown ~15 % in a week), rare a week ago.
    typical_today = 20 * math.exp(DRIFT * 29) * 1.3
    assert survival(tail, typical_today, day=day(0)) == survival(tail, typical_today)
    assert survival(tail, typical_today, day=day(-7)) < survival(tail, typical_today) / 3
    # The same amount scaled by the week's drift reads the same a week earlier.
    earlier = typical_today * math.exp(-DRIFT * 7)
    assert survival(tail, earlier, day=day(-7)) == pytest.approx(
        survival(tail, typical_today), rel=0.25
    )


@given(offset=st.integers(-400, 400))
def test_the_level_of_any_day_stays_within_half_and_twice_the_windows(offset: int) -> None:
    tail = STEEP.tail
    assert tail is not None
    p = survival(tail, 100.0, day=day(offset))
    # Read at a level between 0.5 and 2: between the window's survival at 200 and at 50.
    rarest = survival(tail, 200.0 * tail.level_ratio, day=day(0))
    commonest = survival(tail, 50.0 * tail.level_ratio, day=day(0))
    assert rarest <= p <= commonest


def test_without_a_trend_or_a_day_nothing_changes_and_the_wire_keeps_it() -> None:
    flat = drifting_baseline(drift=0.0)
    assert flat.tail is not None and flat.tail.level_slope == 0.0
    assert survival(flat.tail, 30.0, day=day(-20)) == survival(flat.tail, 30.0)
    steep = STEEP.tail
    assert steep is not None
    assert HeldTail.of(steep.model(), NOW) == steep
    # A tail read without its baseline's day (an old producer's record) ignores the slope.
    assert HeldTail.of(steep.model()).level_slope == 0.0


STEEP = drifting_baseline(drift=0.05)


def test_a_window_that_ends_before_the_recompute_reads_its_level_at_its_own_last_day() -> None:
    """A history replayed after the fact: the window ends at its newest transaction, days
    before the recompute (baseline_worker.compute.window_anchor). Its amounts read as they
    would have on that day, not with the trend carried on to the recompute's day."""
    on_the_day = STEEP
    later = drifting_baseline(drift=0.05, computed_at=NOW + timedelta(days=10))
    assert on_the_day.tail is not None and later.tail is not None
    assert later.tail.level_day == on_the_day.tail.level_day == day(0)
    assert later.window_end == NOW.date()
    assert on_the_day.window_end is None  # the steady state states none
    for offset in (-7, 0, 3):
        for amount in (40.0, 90.0, 200.0):
            assert survival(later.tail, amount, day=day(offset)) == survival(
                on_the_day.tail, amount, day=day(offset)
            )
    # The day travels on the wire, left out where it is computed_at's.
    document = later.model()
    assert document.window_end == NOW.date() and document.last_day() == NOW.date()
    again = HeldBaseline.of(document)
    assert (again.window_end, again.tail) == (later.window_end, later.tail)
    assert "window_end" not in on_the_day.model().model_dump(mode="json")
    assert on_the_day.model().last_day() == NOW.date()
