"""Percentiles of one round, and a metric's spread over rounds."""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of the values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max and the sample count, for latencies in milliseconds."""
    return {
        "count": len(values_ms),
        "p50": percentile(values_ms, 50),
        "p90": percentile(values_ms, 90),
        "p99": percentile(values_ms, 99),
        "max": max(values_ms, default=math.nan),
    }


@dataclass(frozen=True)
class Metric:
    """One number a benchmark reports, with its value in each round."""

    benchmark: str
    name: str
    unit: str
    values: list[float]
    target: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "name": self.name,
            "unit": self.unit,
            "target": self.target,
            "median": self.median,
            "min": min(self.values, default=math.nan),
            "max": max(self.values, default=math.nan),
            "rounds": self.values,
        }


@dataclass(frozen=True)
class Outcome:
    """What one benchmark returns to the suite: every round's raw figures and the metrics."""

    rounds: list[dict[str, Any]]
    metrics: list[Metric]
