"""A merchant's window read as truncated at its own high edge (TailFit.truncated_at;
docs/accuracy.md, round 20): rows judged high never feed it, so a heavy tail fitted on the
rest reads lighter than it is."""

import math
import random
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baseline_worker.histogram import histogram
from baseline_worker.recompute import scope_fit
from baseline_worker.rollup import MemoryRollup
from baseline_worker.tail import TailFit, _truncated_best, fitted_tail
from schemas import ScopeKind, Transaction

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
OFF = TailFit(truncated_at=0.0)


def lomax(rng: random.Random, alpha: float, n: int) -> list[float]:
    """Past any threshold a Lomax's excesses are a GPD of shape 1 / alpha, exactly."""
    return [300.0 * ((1.0 - rng.random()) ** (-1.0 / alpha) - 1.0) + 1.0 for _ in range(n)]


def kept_out_past(amounts: list[float], alpha: float, rarity: float) -> list[float]:
    """Without the amounts past the true `rarity` amount."""
    edge = 300.0 * (rarity ** (-1.0 / alpha) - 1.0) + 1.0
    return [a for a in amounts if a < edge]


def as_production_keeps(amounts: list[float], fit: TailFit, rounds: int = 4) -> list[float]:
    """The window production converges to: the rows past the edge where the window's own
    tail (fitted with `fit`) reads the high tier's rarity stay out, and the tail is fitted
    again on what is left."""
    window = amounts
    for _ in range(rounds):
        model = fitted_tail(histogram(window), fit).model
        assert model is not None
        excess = model.scale / model.shape * ((1 / 5000 / model.exceedance) ** -model.shape - 1)
        window = [a for a in amounts if a < model.threshold + excess]
    return window


def raw_shape(amounts: list[float], fit: TailFit) -> float:
    shape = fitted_tail(histogram(amounts), fit).raw_shape
    assert shape is not None
    return shape


def test_a_heavy_window_without_its_top_reads_its_own_shape_again() -> None:
    """30 windows of 6,000 Lomax amounts of shape 0.5, each without its amounts past its
    own high edge, as production keeps them out: read as they are, the excesses give a
    shape too light on average; read as truncated at the edge, nearer the truth."""
    rng = random.Random(11)
    samples = [lomax(rng, 2.0, 6000) for _ in range(30)]
    plain = statistics.mean(raw_shape(as_production_keeps(s, OFF), OFF) for s in samples)
    fit = TailFit()
    truncated = statistics.mean(raw_shape(as_production_keeps(s, fit), fit) for s in samples)
    assert plain < 0.46
    assert abs(truncated - 0.5) < abs(plain - 0.5) / 2


@pytest.mark.parametrize(
    ("draw", "n"),
    [
        (lambda rng: rng.gammavariate(5.0, 10.0), 6000),  # a light tail: no heavy reading
        (lambda rng: 300.0 * ((1.0 - rng.random()) ** (-1 / 3) - 1.0) + 1.0, 1500),  # small
    ],
    ids=["light", "small"],
)
def test_a_light_tail_or_a_small_window_is_fitted_as_before(
    draw: Callable[[random.Random], float], n: int
) -> None:
    """A light tail reads no heavy shape, and a window of 1,500 would hold under half a
    sample past 1 in 5,000: neither is read as truncated, to the last digit."""
    rng = random.Random(3)
    bins = histogram(draw(rng) for _ in range(n))
    assert fitted_tail(bins, TailFit()) == fitted_tail(bins, OFF)


def test_an_excess_past_the_edge_leaves_the_window_as_it_is() -> None:
    """An amount past the edge fed the window (before the tail moved): the window is not
    truncated there, and its own shape stands."""
    rng = random.Random(5)
    amounts = [*lomax(rng, 2.0, 6000), 1e7]
    bins = histogram(amounts)
    assert fitted_tail(bins, TailFit()) == fitted_tail(bins, OFF)


@settings(max_examples=200, deadline=None)
@given(
    theta=st.floats(1e-4, 10.0),
    mean_log=st.floats(0.01, 1.5),
    k=st.integers(20, 5000),
)
def test_far_from_the_data_the_truncation_is_zhang_and_stephens_own(
    theta: float, mean_log: float, k: int
) -> None:
    """With the edge far past every excess, the truncated likelihood peaks where Zhang &
    Stephens' profile does: the mean of ln(1 + theta x)."""
    edge = math.expm1(200.0) / theta
    shape, _ = _truncated_best(theta, k * mean_log, k, edge)
    assert shape == pytest.approx(mean_log, rel=1e-4, abs=1e-6)


def test_only_a_merchant_s_window_is_read_as_truncated() -> None:
    """A category's window lacks the rows its merchants judged high, past their own edges,
    not past its own: the recompute fits it as it is. One merchant, so the two windows hold
    the same rows."""
    rng = random.Random(7)
    rollup = MemoryRollup(30)
    amounts = as_production_keeps(lomax(rng, 2.0, 6000), TailFit())
    rows = [
        Transaction(
            id=uuid4(),
            amount=Decimal(f"{amount:.2f}"),
            category="electronics",
            merchant="Gadgets",
            transaction_date=NOW - timedelta(days=rng.uniform(0.1, 25)),
        )
        for amount in amounts
    ]
    for row in sorted(rows, key=lambda r: r.transaction_date):
        rollup.add(row)
    window = rollup.window(NOW)
    fitted = {}
    for scope in window.scopes():
        stats = window.stats(scope)
        assert stats is not None
        fitted[scope.kind] = (scope_fit(stats, 30, TailFit()), scope_fit(stats, 30, OFF))
    category, merchant = fitted[ScopeKind.CATEGORY], fitted[ScopeKind.MERCHANT]
    assert category[0] == category[1]
    assert merchant[0].raw_shape is not None and merchant[1].raw_shape is not None
    assert merchant[0].raw_shape > merchant[1].raw_shape + 0.02
