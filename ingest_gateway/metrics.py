"""Every metric the gateway exports, declared once against a given registry."""

from dataclasses import dataclass, field
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

from schemas.alert import Resolution
from schemas.verdict import Rule
from shared.metrics import preset

# An accepted POST waits for acks=all on a local broker: a few ms, more under load.
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class GatewayMetrics:
    http_request_duration: Histogram
    db_query_duration: Histogram
    publish_duration: Histogram
    publish_failures: Counter
    rate_limited: Counter
    rejected: Counter
    alert_resolutions: Counter
    # http_request_duration's series by (route, method, status): `.labels()` costs four times
    # an `observe()`, paid on every request otherwise. Bounded as the labels are.
    _request_series: dict[tuple[str, str, int], Histogram] = field(default_factory=dict)

    def request_duration(self, route: str, method: str, status: int) -> Histogram:
        """The http_request_duration series of one route, method and status."""
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = self.http_request_duration.labels(
                route=route, method=method, status=str(status)
            )
            self._request_series[key] = series
        return series

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "GatewayMetrics":
        ProcessCollector(registry=registry)  # process_* memory, CPU, open files
        return cls(
            # Seed name; route is the matched pattern (bounded cardinality), never the raw path.
            http_request_duration=Histogram(
                "http_request_duration_seconds",
                "HTTP requests, by route, method and status.",
                ["route", "method", "status"],
                buckets=_HTTP_BUCKETS,
                registry=registry,
            ),
            db_query_duration=Histogram(
                "db_query_duration_seconds",
                "Database round trips, by query.",
                ["query"],
                buckets=_HTTP_BUCKETS,
                registry=registry,
            ),
            publish_duration=Histogram(
                "gateway_kafka_publish_duration_seconds",
                "From send to the broker's acknowledgement (acks=all).",
                buckets=_HTTP_BUCKETS,
                registry=registry,
            ),
            publish_failures=Counter(
                "gateway_kafka_publish_failures",
                "Publishes that failed (answered 503).",
                registry=registry,
            ),
            rate_limited=Counter(
                "gateway_rate_limited_requests", "Requests refused with 429.", registry=registry
            ),
            rejected=Counter(
                "gateway_rejected_requests",
                "Requests refused as invalid, by reason.",
                ["reason"],
                registry=registry,
            ),
            # The labels a backtest needs, by rule (the scope is in GET /alerts/resolutions:
            # a label per merchant would be unbounded).
            alert_resolutions=preset(
                Counter(
                    "jalytics_alert_resolutions",
                    "Alerts resolved by an analyst, by resolution and by the rule that fired.",
                    ["resolution", "rule"],
                    registry=registry,
                ),
                resolution=get_args(Resolution),
                rule=get_args(Rule),
            ),
        )
