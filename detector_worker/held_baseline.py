"""The detector's in-memory form of a baseline.

A validated `Baseline` model carries an instance dict, its set of the fields given, and a
nested scope model with its own dict and set; this slotted row is much smaller (figures in
docs/performance.md, "Measurements behind the code"). Every detector holds every scope, so
this is what decides how many merchants one process can watch.

The wire model is rebuilt only for a verdict that names the baseline; the latest few thousand
are cached, which covers the busy scopes of a real stream.
"""

import sys
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TypeAlias
from uuid import UUID

from detector_worker.tail import HeldTail
from schemas import Baseline, BaselineScope, ScopeKind

# (kind, name, currency): the dictionary key of a scope. A tuple, so that a lookup per
# transaction costs a hash instead of validating a `BaselineScope` model.
ScopeKey: TypeAlias = tuple[ScopeKind, str, str]

# Verdict models kept for the most recently scored scopes.
MODEL_CACHE_SIZE = 4096


def scope_key(scope: BaselineScope) -> ScopeKey:
    # Interned: a few currencies are shared by every row instead of one copy per row.
    return (scope.kind, scope.name, sys.intern(scope.currency))


@dataclass(frozen=True, slots=True, eq=False)
class HeldBaseline:
    """One scope's statistics as the detector keeps them. eq=False: compared and hashed by
    identity, which is what the model cache needs (a new record is a new row)."""

    id: UUID
    key: ScopeKey
    count: int
    mean: float
    stddev: float
    log_mean: float | None
    log_stddev: float | None
    tail: HeldTail | None
    window_days: int
    computed_at: datetime
    window_end: date | None = None  # Baseline.window_end

    @classmethod
    def of(cls, baseline: Baseline) -> "HeldBaseline":
        return cls(
            id=baseline.id,
            key=scope_key(baseline.scope),
            count=baseline.count,
            mean=baseline.mean,
            stddev=baseline.stddev,
            log_mean=baseline.log_mean,
            log_stddev=baseline.log_stddev,
            tail=(
                HeldTail.of(baseline.tail, baseline.last_day())
                if baseline.tail is not None
                else None
            ),
            window_days=baseline.window_days,
            computed_at=baseline.computed_at,
            window_end=baseline.window_end,
        )

    def model(self) -> Baseline:
        """The wire model, as the verdict carries it."""
        return _model(self)


@lru_cache(maxsize=MODEL_CACHE_SIZE)
def _model(held: HeldBaseline) -> Baseline:
    kind, name, currency = held.key
    # model_validate from typed values is faster than model_construct (docs/performance.md).
    return Baseline.model_validate(
        {
            "id": held.id,
            "scope": {"kind": kind, "name": name, "currency": currency},
            "count": held.count,
            "mean": held.mean,
            "stddev": held.stddev,
            "log_mean": held.log_mean,
            "log_stddev": held.log_stddev,
            "tail": held.tail.model() if held.tail is not None else None,
            "window_days": held.window_days,
            "computed_at": held.computed_at,
            "window_end": held.window_end,
        }
    )
