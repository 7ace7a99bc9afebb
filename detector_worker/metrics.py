"""Every metric the detector exports, declared once against a given registry."""

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.records import DeadLetterReason
from schemas.verdict import Severity
from shared.metrics import preset

# Batches take milliseconds to a few seconds when the database is slow.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
# The stages the pipeline retries (see pipeline.retry_transient).
RETRY_STAGES = ("persist", "publish")
# Label values past this many distinct ones per process share one series (see CappedCounter).
INPUT_LABEL_LIMIT = 200
OTHER = "_other_"
OTHER_MERCHANTS = OTHER  # the name dashboards and tests knew it by


@dataclass
class CappedCounter:
    """A counter with one label whose values come from input, with bounded cardinality.

    Merchant and category names are open-ended: one series per name would let a flood of
    new names swamp Prometheus and the /metrics page. The first `limit` values a process
    sees get a series each; later ones count under "_other_". Heavy hitters show up early (a
    value is seen first in proportion to its traffic), so the top of the list is right in
    practice.
    """

    counter: Counter
    label: str
    limit: int = INPUT_LABEL_LIMIT
    _admitted: set[str] = field(default_factory=set)
    # The series of each admitted value (at most `limit`, and "_other_"): Counter.labels
    # takes a lock and builds its key for every call, ~1 µs, once per merchant and batch.
    _series: dict[str, Counter] = field(default_factory=dict)

    def inc(self, value: str, amount: int = 1) -> None:
        self._series_of(value).inc(amount)

    def labels(self, **values: str) -> Counter:
        """The series for `label=value`, as Counter.labels would give it (capped)."""
        return self._series_of(values[self.label])

    def _series_of(self, value: str) -> Counter:
        series = self._series.get(value)
        if series is None:
            # Keyed by the admitted value: a flood of new names must not grow this dict.
            admitted = self._admit(value)
            series = self._series.get(admitted)
            if series is None:
                series = self._series[admitted] = self.counter.labels(**{self.label: admitted})
        return series

    def _admit(self, value: str) -> str:
        if value in self._admitted:
            return value
        if len(self._admitted) >= self.limit:
            return OTHER
        self._admitted.add(value)
        return value


def observe_many(histogram: Histogram, values: Iterable[float]) -> None:
    """`histogram.observe(value)` for each finite value (an unlabelled histogram), counted per
    bucket first and added once a bucket: per value, observe takes two locks and walks the
    buckets (~1-2 µs a transaction for the end-to-end latency). Reads the histogram's own
    buckets and sum, as prometheus_client has no bulk observe;
    tests/unit/test_detector_observability.py holds the samples to observe's."""
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for value in values:
        # observe's bucket: the first bound the value does not exceed (+Inf takes the rest).
        counts[bisect_left(bounds, value)] += 1
        total += value
    if not any(counts):
        return
    histogram._sum.inc(total)
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def baseline_age_seconds(baselines: Mapping[ScopeKey, HeldBaseline], now: datetime) -> float:
    """Seconds since the newest baseline held was computed; NaN while none is held."""
    if not baselines:
        return math.nan
    newest = max(baseline.computed_at for baseline in baselines.values())
    return max(0.0, (now - newest).total_seconds())


def consumer_lag(highwaters: Mapping[int, int], committed: Mapping[int, int]) -> dict[int, int]:
    """Records not yet committed, per partition. A partition with no committed offset yet is
    read from its start (auto_offset_reset=earliest): the whole partition is lag."""
    return {p: max(0, end - max(committed.get(p, 0), 0)) for p, end in highwaters.items()}


# Whether an alert was under a suppression rule: paging rules count only "false".
SUPPRESSED = ("false", "true")


@dataclass(frozen=True)
class DetectorMetrics:
    transactions: CappedCounter
    anomalies: Counter
    anomalies_by_severity: Counter
    db_query_duration: Histogram
    batch_size: Histogram
    end_to_end_latency: Histogram
    dead_letters: Counter
    retries: Counter
    baseline_scopes: Gauge
    last_batch_timestamp: Gauge
    transactions_by_merchant: CappedCounter
    consumer_lag: Gauge
    baseline_age: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "DetectorMetrics":
        # Memory, CPU, open files and start time (restarts) of this process.
        ProcessCollector(registry=registry)
        return cls(
            # Seed names, kept exactly.
            transactions=CappedCounter(
                Counter(
                    "transactions",
                    f"Transactions scored, by category (the first {INPUT_LABEL_LIMIT} "
                    f'categories seen; the rest as "{OTHER}").',
                    ["category"],
                    registry=registry,
                ),
                "category",
            ),
            anomalies=preset(
                Counter(
                    "anomalies",
                    "Anomalous transactions (suppressed: under a suppression rule).",
                    ["suppressed"],
                    registry=registry,
                ),
                suppressed=SUPPRESSED,
            ),
            anomalies_by_severity=preset(
                Counter(
                    "anomalies_by_severity",
                    "Anomalies by severity (suppressed: under a suppression rule).",
                    ["severity", "suppressed"],
                    registry=registry,
                ),
                severity=get_args(Severity),
                suppressed=SUPPRESSED,
            ),
            db_query_duration=Histogram(
                "db_query_duration_seconds",
                "Database round trips, by query.",
                ["query"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            # What an operator needs beyond the seed.
            batch_size=Histogram(
                "detector_batch_size",
                "Records per processed batch.",
                buckets=_BATCH_BUCKETS,
                registry=registry,
            ),
            end_to_end_latency=Histogram(
                "detector_end_to_end_latency_seconds",
                "From receipt (received_at) to the verdict being persisted and published.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            dead_letters=preset(
                Counter(
                    "detector_dead_letters",
                    "Records sent to the dead-letter topic, by reason.",
                    ["reason"],
                    registry=registry,
                ),
                reason=get_args(DeadLetterReason),
            ),
            retries=preset(
                Counter(
                    "detector_retries",
                    "Transient failures retried, by stage.",
                    ["stage"],
                    registry=registry,
                ),
                stage=RETRY_STAGES,
            ),
            baseline_scopes=Gauge(
                "detector_baseline_scopes", "Baseline scopes held in memory.", registry=registry
            ),
            last_batch_timestamp=Gauge(
                "detector_last_batch_timestamp_seconds",
                "When the last batch finished.",
                registry=registry,
            ),
            transactions_by_merchant=CappedCounter(
                Counter(
                    "transactions_by_merchant",
                    f"Transactions scored, by merchant (the first {INPUT_LABEL_LIMIT} "
                    f'merchants seen; the rest as "{OTHER}").',
                    ["merchant"],
                    registry=registry,
                ),
                "merchant",
            ),
            consumer_lag=Gauge(
                "detector_consumer_lag",
                "Records of the partitions this process owns not yet committed by its group.",
                ["topic", "partition"],
                registry=registry,
            ),
            baseline_age=Gauge(
                "detector_baseline_age_seconds",
                "Age of the newest baseline in the in-memory table (NaN while empty).",
                registry=registry,
            ),
        )
