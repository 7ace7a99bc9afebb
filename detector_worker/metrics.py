"""Every metric the detector exports, declared once against a given registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Batches take milliseconds to a few seconds when the database is slow.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


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

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "DetectorMetrics":
        return cls(
            # Seed names, kept exactly.
            transactions=Counter(
                "transactions",
                "Transactions scored, by category.",
                ["category"],
                registry=registry,
            ),
            anomalies=Counter("anomalies", "Anomalous transactions.", registry=registry),
            anomalies_by_severity=Counter(
                "anomalies_by_severity", "Anomalies by severity.", ["severity"], registry=registry
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
            dead_letters=Counter(
                "detector_dead_letters",
                "Records sent to the dead-letter topic, by reason.",
                ["reason"],
                registry=registry,
            ),
            retries=Counter(
                "detector_retries",
                "Transient failures retried, by stage.",
                ["stage"],
                registry=registry,
            ),
            baseline_scopes=Gauge(
                "detector_baseline_scopes", "Baseline scopes held in memory.", registry=registry
            ),
            last_batch_timestamp=Gauge(
                "detector_last_batch_timestamp_seconds",
                "When the last batch finished.",
                registry=registry,
            ),
        )
