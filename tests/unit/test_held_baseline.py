"""The detector's compact baseline rows: the wire model comes back unchanged, a newer record
for a scope is never answered from the model cache of the older one, and rows stay small."""

import gc
import tracemalloc
from datetime import UTC, datetime
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from detector_worker.baseline_table import BaselineTable
from detector_worker.held_baseline import HeldBaseline
from schemas import Baseline, BaselineScope, ScopeKind, encode_model

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
finite = st.floats(allow_nan=False, allow_infinity=False)
spread = st.floats(min_value=0, allow_nan=False, allow_infinity=False)


def baseline(name: str = "Cafe", mean: float = 50.0, **changes: object) -> Baseline:
    fields: dict[str, object] = {
        "id": uuid4(),
        "scope": BaselineScope(kind=ScopeKind.MERCHANT, name=name, currency="USD"),
        "count": 1000,
        "mean": mean,
        "stddev": 20.0,
        "window_days": 30,
        "computed_at": NOW,
    }
    return Baseline.model_validate(fields | changes)


@given(
    mean=finite,
    stddev=spread,
    log_mean=st.none() | finite,
    log_stddev=st.none() | spread,
    count=st.integers(min_value=0, max_value=2**40),
    kind=st.sampled_from(ScopeKind),
)
def test_the_wire_model_comes_back_unchanged(
    mean: float,
    stddev: float,
    log_mean: float | None,
    log_stddev: float | None,
    count: int,
    kind: ScopeKind,
) -> None:
    original = baseline(
        mean=mean,
        stddev=stddev,
        log_mean=log_mean,
        log_stddev=log_stddev,
        count=count,
        scope=BaselineScope(kind=kind, name="Café ☕", currency="EUR"),
    )
    held = HeldBaseline.of(original)
    assert held.key == (kind, "Café ☕", "EUR")
    assert encode_model(held.model()) == encode_model(original)


def test_a_newer_record_for_a_scope_replaces_the_cached_model() -> None:
    table = BaselineTable()
    first, second = baseline(mean=50.0), baseline(mean=80.0)
    table.apply(first.scope.key(), encode_model(first))
    (key,) = table.view
    assert table.view[key].model().id == first.id
    table.apply(second.scope.key(), encode_model(second))
    assert table.view[key].model() == second
    table.apply(second.scope.key(), None)
    assert key not in table.view


def test_a_held_scope_costs_under_a_kilobyte() -> None:
    records = [(b.scope.key(), encode_model(b)) for b in map(baseline, map(str, range(5000)))]
    table = BaselineTable()
    gc.collect()
    tracemalloc.start()
    try:
        for key, value in records:
            table.apply(key, value)
        gc.collect()
        held_bytes, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) == 5000
    # A validated Baseline model per scope costs about 2.5 KB (the reason for the rows).
    assert held_bytes / len(table) < 1024
