"""Every metric the baseline worker exports, declared once against a given registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

_RECOMPUTE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class BaselineMetrics:
    db_query_duration: Histogram
    recompute_duration: Histogram
    recompute_failures: Counter
    recompute_triggers: Counter
    last_success: Gauge
    scopes: Gauge
    tombstones: Counter
    leader: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "BaselineMetrics":
        # Memory, CPU, open files and start time (restarts) of this process.
        ProcessCollector(registry=registry)
        return cls(
            db_query_duration=Histogram(
                "db_query_duration_seconds",
                "Database round trips, by query.",
                ["query"],
                buckets=_RECOMPUTE_BUCKETS,
                registry=registry,
            ),
            recompute_duration=Histogram(
                "baseline_recompute_duration_seconds",
                "One full recompute and publish.",
                buckets=_RECOMPUTE_BUCKETS,
                registry=registry,
            ),
            recompute_failures=Counter(
                "baseline_recompute_failures",
                "Recomputes that failed and will be retried.",
                registry=registry,
            ),
            recompute_triggers=Counter(
                "baseline_recompute_triggers",
                "What started each recompute after the first: the interval, or the rows"
                " stored since the last one (growth).",
                ["reason"],
                registry=registry,
            ),
            last_success=Gauge(
                "baseline_last_success_timestamp_seconds",
                "When baselines were last published (age = time() - this).",
                registry=registry,
            ),
            scopes=Gauge(
                "baseline_scopes",
                "Scopes published by the last recompute.",
                ["kind"],
                registry=registry,
            ),
            tombstones=Counter(
                "baseline_tombstones", "Scopes removed (no data left in window).", registry=registry
            ),
            leader=Gauge(
                "baseline_leader",
                "1 while this instance holds the leadership lock.",
                registry=registry,
            ),
        )
