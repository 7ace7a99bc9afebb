"""Every metric the detector exports, declared once against a given registry."""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.records import DeadLetterReason
from schemas.verdict import Severity

# Batches take milliseconds to a few seconds when the database is slow.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
# The stages the pipeline retries (see pipeline.retry_transient).
RETRY_STAGES = ("persist", "publish")
# Merchants past this many distinct names per process share one series (see MerchantCounter).
MERCHANT_LABEL_LIMIT = 200
OTHER_MERCHANTS = "_other_"


@dataclass
class MerchantCounter:
    """`transactions_by_merchant_total{merchant}` with bounded cardinality.

    Merchant names are open-ended input: one series per name would let a flood of new names
    swamp Prometheus. The first `limit` merchants a process sees get a series each; later
    ones count under merchant="_other_". Heavy hitters show up early (a merchant is seen
    first in proportion to its traffic), so the top of the list is right in practice.
    """

    counter: Counter
    limit: int = MERCHANT_LABEL_LIMIT
    _admitted: set[str] = field(default_factory=set)

    def inc(self, merchant: str, amount: int = 1) -> None:
        self.counter.labels(merchant=self._label(merchant)).inc(amount)

    def _label(self, merchant: str) -> str:
        if merchant in self._admitted:
            return merchant
        if len(self._admitted) >= self.limit:
            return OTHER_MERCHANTS
        self._admitted.add(merchant)
        return merchant


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


def _preset(counter: Counter, label: str, values: Iterable[str]) -> Counter:
    """Create the series of known label values at 0, so that `increase()` sees the first event
    (a series born with value 1 has no earlier sample to increase from)."""
    for value in values:
        counter.labels(**{label: value})
    return counter


@dataclass(frozen=True)
class DetectorMetrics:
    transactions: Counter
    anomalies: Counter
    anomalies_by_severity: Counter
    db_query_duration: Histogram
    batch_size: Histogram
    end_to_end_latency: Histogram
    dead_letters: Counter
    retries: Counter
    baseline_scopes: Gauge
    last_batch_timestamp: Gauge
    transactions_by_merchant: MerchantCounter
    consumer_lag: Gauge
    baseline_age: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "DetectorMetrics":
        # Memory, CPU, open files and start time (restarts) of this process.
        ProcessCollector(registry=registry)
        return cls(
            # Seed names, kept exactly.
            transactions=Counter(
                "transactions",
                "Transactions scored, by category.",
                ["category"],
                registry=registry,
            ),
            anomalies=Counter("anomalies", "Anomalous transactions.", registry=registry),
            anomalies_by_severity=_preset(
                Counter(
                    "anomalies_by_severity",
                    "Anomalies by severity.",
                    ["severity"],
                    registry=registry,
                ),
                "severity",
                get_args(Severity),
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
            dead_letters=_preset(
                Counter(
                    "detector_dead_letters",
                    "Records sent to the dead-letter topic, by reason.",
                    ["reason"],
                    registry=registry,
                ),
                "reason",
                get_args(DeadLetterReason),
            ),
            retries=_preset(
                Counter(
                    "detector_retries",
                    "Transient failures retried, by stage.",
                    ["stage"],
                    registry=registry,
                ),
                "stage",
                RETRY_STAGES,
            ),
            baseline_scopes=Gauge(
                "detector_baseline_scopes", "Baseline scopes held in memory.", registry=registry
            ),
            last_batch_timestamp=Gauge(
                "detector_last_batch_timestamp_seconds",
                "When the last batch finished.",
                registry=registry,
            ),
            transactions_by_merchant=MerchantCounter(
                Counter(
                    "transactions_by_merchant",
                    f"Transactions scored, by merchant (the first {MERCHANT_LABEL_LIMIT} "
                    f'merchants seen; the rest as "{OTHER_MERCHANTS}").',
                    ["merchant"],
                    registry=registry,
                )
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
