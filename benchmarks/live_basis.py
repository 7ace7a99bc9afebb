"""What the live verdicts of a replay rested on: the rule, the scope, and how much of the
history the baseline had seen (benchmarks/live_replay.py).

A replay that does not wait for the baselines posts the evaluated days while the history is
still being stored and recomputed over. A verdict's baseline says when it was computed
(`Baseline.computed_at`, the recompute's start); the replay samples how many history rows
were stored over time; the share of the history stored at that moment is what that baseline
could have seen at most (a reading taken before the moment: a slight under-estimate, by at
most one sampling period).
"""

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas import Verdict

# Share of the history a verdict's baseline covered, by bucket (lower bound, label).
COVERAGE_BUCKETS = ((0.99, ">=99%"), (0.9, "90-99%"), (0.5, "50-90%"), (0.0, "<50%"))


@dataclass
class StoredTimeline:
    """How many history rows were stored by each moment (Unix seconds, ascending)."""

    times: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def add(self, moment: float, count: int) -> None:
        self.times.append(moment)
        self.counts.append(count)

    def stored_at(self, moment: float) -> int:
        """The rows stored by `moment`: the last reading taken at or before it (0 before
        the first)."""
        index = bisect_right(self.times, moment)
        return self.counts[index - 1] if index else 0

    def reached(self, rows: int) -> float | None:
        """The first moment at least `rows` were stored (None: never seen)."""
        return next((t for t, c in zip(self.times, self.counts, strict=True) if c >= rows), None)


def stored_timings(
    timeline: StoredTimeline, history_rows: int, evaluated_from: float
) -> dict[str, float]:
    """When the whole history was stored, in seconds after the first evaluated post (< 0:
    before it; NaN: never seen), and the share of it stored at that first post."""
    stored = timeline.reached(history_rows)
    return {
        "history_stored_after_evaluated_start_seconds": (
            math.nan if stored is None else stored - evaluated_from
        ),
        "history_stored_share_at_evaluated_start": (
            timeline.stored_at(evaluated_from) / max(1, history_rows)
        ),
    }


def coverage_bucket(share: float) -> str:
    return next(label for bound, label in COVERAGE_BUCKETS if share >= bound)


def method_of(verdict: Verdict) -> str:
    """The rule that judged a verdict. A verdict names its rule only when it alerts
    (detector_worker/scoring.py); otherwise what it carries says which: a tail probability
    (`tail`), a z without one (`log_zscore`, a baseline without a tail), neither (the stable
    scopes' `low_variance`), no baseline at all (`none`)."""
    if verdict.rule is not None:
        return verdict.rule
    if verdict.baseline is None:
        return "none"
    if verdict.tail_probability is not None:
        return "tail"
    return "low_variance" if verdict.z_score is None else "log_zscore"


def verdict_basis(
    verdicts: Sequence[Verdict], timeline: StoredTimeline, history_rows: int
) -> dict[str, Any]:
    """Counts of the verdicts by rule, by the baseline's scope kind, with and without a
    tail, and by the share of the history their baseline covered."""
    rules = Counter(method_of(v) for v in verdicts)
    scopes = Counter(v.baseline.scope.kind.value if v.baseline else "none" for v in verdicts)
    coverage: Counter[str] = Counter()
    for verdict in verdicts:
        if verdict.baseline is None:
            coverage["no baseline"] += 1
            continue
        stored = timeline.stored_at(verdict.baseline.computed_at.timestamp())
        coverage[coverage_bucket(stored / max(1, history_rows))] += 1
    return {
        "verdicts": len(verdicts),
        "rule": dict(rules),
        "scope": dict(scopes),
        "without_tail": sum(method_of(v) != "tail" for v in verdicts),
        "history_covered": dict(coverage),
    }
