"""The rollup's arithmetic in memory (what the SQL trigger keeps), as replays use it."""

from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from baseline_worker.compute import stale_scopes
from baseline_worker.histogram import bin_of
from baseline_worker.rollup import MemoryRollup, RollupWindow, feeds_baseline, kept_as_price
from schemas import BaselineScope, ScopeKind, Transaction

DAY0 = datetime(2025, 3, 1, tzinfo=UTC)
FOOD = BaselineScope(kind=ScopeKind.CATEGORY, name="food", currency="USD")
CAFE = BaselineScope(kind=ScopeKind.MERCHANT, name="Cafe", currency="USD")


def txn(amount: str, at: datetime = DAY0) -> Transaction:
    return Transaction(
        id=uuid4(), amount=Decimal(amount), category="food", merchant="Cafe", transaction_date=at
    )


def count_and_mean(window: RollupWindow, scope: BaselineScope) -> tuple[int, float]:
    stats = window.stats(scope)
    assert stats is not None
    return stats.moments.count, round(stats.moments.mean, 9)


def test_only_high_and_critical_stay_out_of_baselines() -> None:
    assert feeds_baseline(None) and feeds_baseline("medium")
    assert not feeds_baseline("high") and not feeds_baseline("critical")


def test_an_exclusion_edge_lets_the_tail_rules_high_rows_under_it_feed() -> None:
    edge = 4.26
    assert feeds_baseline("high", "tail", 3.6, tail_exclusion_z=edge)
    assert not feeds_baseline("high", "tail", edge, tail_exclusion_z=edge)  # inclusive, as tiers
    assert not feeds_baseline("critical", "tail", 5.0, tail_exclusion_z=edge)
    # No edge: the alert's own (every high row out, whatever its z).
    assert not feeds_baseline("high", "tail", 3.6, tail_exclusion_z=None)


def test_other_rules_high_rows_stay_out_whatever_their_z() -> None:
    # A fixed price's jump must never be learned; the seed's z-scores keep the seed's rule.
    for rule in ("low_variance", "zscore", "log_zscore", None):
        assert not feeds_baseline("high", rule, 3.6, tail_exclusion_z=4.26)
    assert not feeds_baseline("high", "low_variance", None, tail_exclusion_z=4.26)
    assert not feeds_baseline("high", "tail", None, tail_exclusion_z=4.26)


def test_rollup_sums_whole_utc_days_of_the_window() -> None:
    rollup = MemoryRollup(window_days=3)
    for day, amount in ((0, "1000"), (1, "10"), (2, "20")):
        rollup.add(txn(amount, DAY0 + timedelta(days=day, hours=23)))
    # Day 3 at 00:30: the window is days 1 and 2 and the (so far empty) day 3.
    early = rollup.window(DAY0 + timedelta(days=3, minutes=30))
    assert count_and_mean(early, CAFE) == (2, 15)
    assert early.scopes() == {FOOD, CAFE}
    rollup.add(txn("30", DAY0 + timedelta(days=3, hours=1)))
    late = rollup.window(DAY0 + timedelta(days=3, hours=2))
    assert count_and_mean(late, CAFE) == (3, 20)
    assert count_and_mean(rollup.window(DAY0 + timedelta(days=4)), CAFE) == (2, 25)
    # Nothing left in the window: the scope is gone, as a tombstone removes it.
    assert rollup.window(DAY0 + timedelta(days=7)).stats(CAFE) is None


def test_a_window_is_a_snapshot() -> None:
    rollup = MemoryRollup(window_days=30)
    rollup.add(txn("10"))
    window = rollup.window(DAY0 + timedelta(hours=1))
    rollup.add(txn("20", DAY0 + timedelta(hours=1)))
    assert count_and_mean(window, CAFE) == (1, 10)


def test_histograms_add_up_across_days_and_late_rows_count() -> None:
    rollup = MemoryRollup(window_days=5)
    rollup.add(txn("10", DAY0))
    rollup.add(txn("10.05", DAY0 + timedelta(days=1)))
    first = rollup.window(DAY0 + timedelta(days=2))
    # A late row for a closed day is counted by the next recompute, as in the trigger.
    rollup.add(txn("99", DAY0 + timedelta(hours=5)))
    second = rollup.window(DAY0 + timedelta(days=2, hours=1))
    before, after = first.stats(CAFE), second.stats(CAFE)
    assert before is not None and after is not None
    assert dict(before.bins) == {bin_of(Decimal("10")): 2}
    assert dict(after.bins) == {bin_of(Decimal("10")): 2, bin_of(Decimal("99")): 1}
    assert after.moments.count == 3


def test_stale_scopes_are_those_whose_histogram_count_differs_from_their_moments() -> None:
    counts = {("merchant", "a", "USD"): 3, ("merchant", "b", "USD"): 2, ("category", "c", "EUR"): 1}
    histograms = {
        ("merchant", "a", "USD"): {10: 2, 11: 1},  # in step
        ("merchant", "b", "USD"): {10: 1},  # a late row not yet summed
        ("merchant", "d", "USD"): {4: 1},  # rows gone from the moments
    }
    assert stale_scopes(counts, histograms) == [
        ("category", "c", "EUR"),
        ("merchant", "b", "USD"),
        ("merchant", "d", "USD"),
    ]
    assert stale_scopes({}, {}) == []


def test_every_rules_high_rows_may_count_as_a_price() -> None:
    assert kept_as_price("high", "low_variance") and kept_as_price("critical", "low_variance")
    assert kept_as_price("high", "tail") and kept_as_price("critical", "zscore")
    assert not kept_as_price("medium", "low_variance") and not kept_as_price(None, None)
    assert not kept_as_price("medium", "tail")


def test_a_kept_out_amount_that_recurs_counts_as_if_it_had_fed() -> None:
    """A fixed price's second price, kept out at each charge, recurs: the window is what it
    would be had those rows fed it (moments, day weights, histogram), in every scope. An
    amount kept out once (a jump) stays out."""
    fed, kept = MemoryRollup(window_days=30), MemoryRollup(window_days=30)
    for day in range(10):
        at = DAY0 + timedelta(days=day, hours=9)
        for rollup in (fed, kept):
            rollup.add(txn("29.99", at))
        if day % 3 == 0:
            fed.add(txn("59.98", at))
            kept.keep_out(txn("59.98", at))
    kept.keep_out(txn("412.77", DAY0 + timedelta(days=4)))  # a jump: once
    now = DAY0 + timedelta(days=10)
    for scope in (FOOD, CAFE):
        as_fed, as_kept = fed.window(now).stats(scope), kept.window(now).stats(scope)
        assert as_fed is not None and as_kept is not None
        a, b = as_kept.moments, as_fed.moments
        assert (a.count, a.total, a.total_sq) == (b.count, b.total, b.total_sq)  # exact
        # ln(amount) summed in another order: equal but for the last bits.
        assert (a.log_total, a.log_total_sq) == pytest.approx((b.log_total, b.log_total_sq))
        assert astuple(as_kept.day_weights) == pytest.approx(astuple(as_fed.day_weights))
        assert as_kept.bins == as_fed.bins == kept.window(now).bins(scope)
        assert bin_of(Decimal("412.77")) not in as_kept.bins


def test_a_kept_out_amount_repeated_within_one_day_is_not_a_price() -> None:
    rollup = MemoryRollup(window_days=30)
    rollup.add(txn("29.99", DAY0))
    for minutes in (1, 2, 3):  # a burst: one amount, one day
        rollup.keep_out(txn("499.99", DAY0 + timedelta(days=1, minutes=minutes)))
    window = rollup.window(DAY0 + timedelta(days=2))
    assert count_and_mean(window, CAFE) == (1, 29.99)
    rollup.keep_out(txn("499.99", DAY0 + timedelta(days=2)))  # and on a second day
    assert count_and_mean(rollup.window(DAY0 + timedelta(days=3)), CAFE)[0] == 5


def test_a_kept_out_amount_seen_once_in_the_window_is_not_a_price() -> None:
    rollup = MemoryRollup(window_days=3)
    rollup.add(txn("29.99", DAY0))
    rollup.keep_out(txn("59.98", DAY0))  # leaves the window below
    rollup.add(txn("29.99", DAY0 + timedelta(days=5)))
    rollup.keep_out(txn("59.98", DAY0 + timedelta(days=5)))
    window = rollup.window(DAY0 + timedelta(days=5, hours=1))
    assert count_and_mean(window, CAFE) == (1, 29.99)
