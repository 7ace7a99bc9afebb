"""Every metric the notifier exports, declared once against a given registry."""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class NotifierMetrics:
    deliveries: Counter
    attempts: Counter
    retries: Counter
    attempt_duration: Histogram
    delivery_delay: Histogram
    circuit_state: Gauge
    in_flight: Gauge
    bad_records: Counter
    db_query_duration: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "NotifierMetrics":
        ProcessCollector(registry=registry)
        return cls(
            # outcome: delivered, dead_lettered.
            deliveries=Counter(
                "webhook_deliveries",
                "Alert deliveries ended, by outcome.",
                ["outcome"],
                registry=registry,
            ),
            # result: 2xx, 3xx, 4xx, 429, 5xx, timeout, connection_error, refused.
            attempts=Counter(
                "webhook_attempts", "HTTP attempts, by result.", ["result"], registry=registry
            ),
            retries=Counter("webhook_retries", "Attempts that were retries.", registry=registry),
            attempt_duration=Histogram(
                "webhook_attempt_duration_seconds",
                "One HTTP attempt, sent to answered.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            delivery_delay=Histogram(
                "webhook_delivery_delay_seconds",
                "Alert read to delivery ended (retries and circuit waits included).",
                buckets=(*_LATENCY_BUCKETS, 60, 300, 900, 3600),
                registry=registry,
            ),
            # One series per live subscription (removed when it is deleted): 0 closed,
            # 1 half-open, 2 open.
            circuit_state=Gauge(
                "webhook_circuit_state",
                "Circuit state per subscription.",
                ["subscription"],
                registry=registry,
            ),
            in_flight=Gauge(
                "webhook_records_in_flight",
                "Alert records read and not yet done.",
                registry=registry,
            ),
            bad_records=Counter(
                "webhook_bad_records",
                "Alert records that could not be read (skipped).",
                registry=registry,
            ),
            db_query_duration=Histogram(
                "db_query_duration_seconds",
                "Database round trips, by query.",
                ["query"],
                registry=registry,
            ),
        )
