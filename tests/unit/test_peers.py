"""A merchant's shape cap from its category peers (baseline_worker.peers): exhaustively,
against the definition computed the slow way."""

import random
import statistics
from collections.abc import Callable, Hashable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baseline_worker.compute import ScopeStats
from baseline_worker.peers import MAD_TO_SIGMA, peer_caps
from baseline_worker.recompute import DEFAULT_FIT, scope_tail, to_baselines
from baseline_worker.rollup import MemoryRollup
from baseline_worker.tail import TailFit
from benchmarks.replay import ReplayBaselines
from detector_worker.held_baseline import HeldBaseline, scope_key
from schemas import ScopeKind, TailModel, Transaction

MIN_PEERS = TailFit().peer_min_peers
K = TypeVar("K", bound=Hashable)


def caps_of(shapes: Mapping[K, float], groups: Mapping[K, object]) -> dict[K, float]:
    # The defaults: median + max(0.05, 1.5 MAD), 3 peers at least.
    return peer_caps(shapes, groups, TailFit())


shape = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)


def slow_cap(peers: list[float], margin: float, mads: float) -> float:
    centre = statistics.median(peers)
    spread = statistics.median(abs(x - centre) for x in peers)
    return centre + max(margin, mads * MAD_TO_SIGMA * spread)


@given(
    st.dictionaries(st.integers(0, 40), st.tuples(st.integers(0, 3), shape), max_size=40),
    st.dictionaries(st.integers(41, 60), st.integers(0, 3), max_size=10),
)
def test_each_cap_is_the_median_and_spread_of_the_others_of_its_group(
    eligible: dict[int, tuple[int, float]], small: dict[int, int]
) -> None:
    """Merchants with enough samples (`eligible`) are capped by the rest of their group,
    the others (`small`) by the whole of it; a group with too few peers caps no one."""
    shapes = {merchant: value for merchant, (_, value) in eligible.items()}
    groups = {merchant: group for merchant, (group, _) in eligible.items()} | small
    caps = caps_of(shapes, groups)
    for merchant, group in groups.items():
        peers = [v for m, v in shapes.items() if groups[m] == group and m != merchant]
        if len(peers) < MIN_PEERS:
            assert merchant not in caps
        else:
            assert caps[merchant] == pytest.approx(slow_cap(peers, 0.05, 1.5), abs=1e-12)


@given(st.lists(shape, min_size=4, max_size=30))
def test_a_cap_is_never_below_the_peers_median_plus_the_margin(values: list[float]) -> None:
    shapes = dict(enumerate(values))
    caps = caps_of(shapes, dict.fromkeys(shapes, "grocery"))
    for merchant, cap in caps.items():
        others = [v for m, v in shapes.items() if m != merchant]
        assert cap >= statistics.median(others) + 0.05 - 1e-12


def test_one_odd_merchant_moves_no_cap_of_the_others_beyond_a_rank() -> None:
    """The median and its absolute deviation: a contaminated merchant's shape of 0.9 caps the
    others no higher than a shape of 0.3 would."""
    calm = {f"m{i}": 0.05 + 0.01 * i for i in range(8)}
    odd = caps_of(calm | {"odd": 0.9}, dict.fromkeys([*calm, "odd"], "fuel"))
    near = caps_of(calm | {"odd": 0.3}, dict.fromkeys([*calm, "odd"], "fuel"))
    assert {m: odd[m] for m in calm} == {m: near[m] for m in calm}
    assert odd["odd"] == pytest.approx(slow_cap(list(calm.values()), 0.05, 1.5))
    assert odd["odd"] < 0.2  # its own 0.9 is capped well below


def test_groups_are_apart_and_a_merchant_without_one_has_no_cap() -> None:
    shapes = {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "x": 0.8, "y": 0.8, "z": 0.8, "w": 0.8}
    groups = dict.fromkeys("abcd", ("food", "USD")) | dict.fromkeys("xyzw", ("travel", "USD"))
    caps = caps_of(shapes | {"lone": 0.5}, groups)
    assert caps["a"] == pytest.approx(0.05)
    assert caps["x"] == pytest.approx(0.85)
    assert "lone" not in caps


# The replay (benchmarks.replay) caps as the recompute does (baseline_worker.recompute).

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def fuel_station(rng: random.Random, merchant: str, draw: Callable[[], float]) -> list[Transaction]:
    return [
        Transaction(
            id=uuid4(),
            amount=Decimal(f"{max(draw(), 0.01):.2f}"),
            currency="USD",
            category="fuel",
            merchant=merchant,
            transaction_date=NOW - timedelta(days=rng.uniform(0.1, 25)),
        )
        for _ in range(300)
    ]


def fuel_window() -> tuple[MemoryRollup, list[ScopeStats]]:
    """Four stations whose fills are gamma baskets and one whose window holds a power law
    (a station whose earlier spikes fed it): its own shape reads far above the others'."""
    rng = random.Random(19)
    rows = [
        row
        for i in range(4)
        for row in fuel_station(rng, f"Station {i}", lambda: 40 * rng.gammavariate(6, 1 / 6))
    ]
    rows += fuel_station(rng, "Odd station", lambda: 30 * rng.paretovariate(2.0))
    rollup = MemoryRollup(30)
    for row in sorted(rows, key=lambda r: r.transaction_date):
        rollup.add(row)
    window = rollup.window(NOW)
    stats = [s for scope in window.scopes() if (s := window.stats(scope)) is not None]
    return rollup, stats


def test_a_merchant_whose_own_shape_reads_above_its_peers_is_fitted_under_their_cap() -> None:
    _, stats = fuel_window()
    baselines = {b.scope: b for b in to_baselines(stats, 30, NOW)}
    odd = next(s for s in stats if s.scope.name == "Odd station")
    assert odd.category == "fuel"
    own = scope_tail(odd, 30, DEFAULT_FIT)
    capped = baselines[odd.scope].tail
    assert own is not None and capped is not None
    assert capped.shape < own.shape - 0.1
    # The alert's explanation keeps the shape its own amounts read, through the wire too.
    assert capped.uncapped_shape == own.shape
    assert TailModel.model_validate_json(capped.model_dump_json()) == capped
    held = HeldBaseline.of(baselines[odd.scope]).model().tail  # as a verdict carries it
    assert held is not None and held.uncapped_shape == own.shape
    # Without the cap, every merchant has its own tail.
    uncapped = to_baselines(stats, 30, NOW, replace(DEFAULT_FIT, peer_cap=False))
    assert {b.scope: b.tail for b in uncapped}[odd.scope] == own
    # A cap only ever lowers a shape; the category scope has none.
    for s in stats:
        alone, tail = scope_tail(s, 30, DEFAULT_FIT), baselines[s.scope].tail
        assert alone is not None and tail is not None
        assert tail.shape <= alone.shape
        if tail.shape < alone.shape:  # capped: the explanation keeps its own shape
            assert tail.uncapped_shape == alone.shape
        else:  # not capped: nothing to explain, and nothing on the wire
            assert tail.uncapped_shape is None
            assert "uncapped_shape" not in tail.model_dump_json()
        if s.scope.kind is ScopeKind.CATEGORY:
            assert tail == alone


def test_the_replay_caps_each_merchant_as_the_recompute_does() -> None:
    rollup, stats = fuel_window()
    expected = {b.scope: b for b in to_baselines(stats, 30, NOW)}
    replayed = ReplayBaselines(rollup.window(NOW), 30, NOW, DEFAULT_FIT, {})
    for scope, baseline in expected.items():
        held = replayed.get(scope_key(scope))
        assert held is not None
        assert held.tail == HeldBaseline.of(baseline).tail, scope.name
