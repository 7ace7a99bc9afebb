"""Detector configuration (environment variables, validated at start-up)."""

from pydantic import Field

from detector_worker.scoring import Method, ScoringConfig
from detector_worker.tier_settings import DEFAULTS, AlertTierSettings


class DetectorSettings(AlertTierSettings):
    consumer_group: str = "jalytics-detector"
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from other hosts
    metrics_port: int = Field(default=9101, ge=0, le=65535)
    # At most 10,000: a batch is decided on the event loop, which also sends the consumer's
    # heartbeats (delivery.InlineConsumerThread); ~100 µs a record holds it ~1 s at most,
    # well inside the smallest SESSION_TIMEOUT_SECONDS (6).
    batch_max_records: int = Field(default=1000, ge=1, le=10_000)
    # How long a batch collects records. It bounds latency and sets the batch size under load
    # (Faust's drainer pauses while a batch is processed): 20 ms gave an end-to-end p99 of
    # 62 ms at 1,000 tx/s for ~10% less peak throughput than 50 ms (docs/performance.md).
    batch_max_wait_seconds: float = Field(default=0.02, gt=0, le=10)
    # A batch is taken once no record has joined it for this long (detector_worker/batching.py):
    # an idle detector scores a record after this, not after the whole window above.
    batch_quiet_seconds: float = Field(default=0.002, gt=0, le=10)
    baseline_catchup_timeout_seconds: float = Field(default=60, gt=0)
    # How long one batch's write may wait on PostgreSQL (a connection, then every statement
    # to the commit) before the connection is cut and the batch retried as in an outage: a
    # database gone silent (no error, no answer) held the detector forever. A batch writes
    # in milliseconds; a bound the writes outgrow would retry them forever, so keep it wide.
    database_timeout_seconds: float = Field(default=30, gt=0, le=600)
    session_timeout_seconds: float = Field(default=10, ge=6, le=300)

    anomaly_method: Method = DEFAULTS.method
    baseline_min_samples: int = Field(default=DEFAULTS.min_samples, ge=2)
    merchant_prior_samples: float = Field(default=DEFAULTS.merchant_prior_samples, ge=0)
    young_merchant_samples: int = Field(default=DEFAULTS.young_merchant_samples, ge=2)
    stable_stddev: float = Field(default=DEFAULTS.stable_stddev, ge=0)
    stable_multiplier: float = Field(default=DEFAULTS.stable_multiplier, gt=1)
    stable_margin: float = Field(default=DEFAULTS.stable_margin, ge=0)
    stable_tolerance: float = Field(default=DEFAULTS.stable_tolerance, ge=0)
    stable_change_scale: float = Field(default=DEFAULTS.stable_change_scale, gt=0)
    stable_reprice: float = Field(default=DEFAULTS.stable_reprice, ge=0)
    top_price_reprice: float = Field(default=DEFAULTS.top_price_reprice, ge=0)
    stable_merchant_evidence: bool = DEFAULTS.stable_merchant_evidence
    unseen_merchant_floor: float = Field(default=DEFAULTS.unseen_merchant_floor, ge=0, lt=1)
    young_merchant_own_level: bool = DEFAULTS.young_merchant_own_level
    young_merchant_level_prior: float = Field(default=DEFAULTS.young_merchant_level_prior, ge=0)
    young_merchant_level_one_sided: bool = DEFAULTS.young_merchant_level_one_sided

    def scoring_config(self) -> ScoringConfig:
        return ScoringConfig(
            tiers=self.alert_tiers,
            strict_tiers=self.strict_alert_tiers,
            strict_mode=self.anomaly_strict_mode,
            method=self.anomaly_method,
            min_samples=self.baseline_min_samples,
            merchant_prior_samples=self.merchant_prior_samples,
            young_merchant_samples=self.young_merchant_samples,
            stable_stddev=self.stable_stddev,
            stable_multiplier=self.stable_multiplier,
            stable_margin=self.stable_margin,
            stable_tolerance=self.stable_tolerance,
            stable_change_scale=self.stable_change_scale,
            stable_reprice=self.stable_reprice,
            top_price_reprice=self.top_price_reprice,
            stable_merchant_evidence=self.stable_merchant_evidence,
            unseen_merchant_floor=self.unseen_merchant_floor,
            young_merchant_own_level=self.young_merchant_own_level,
            young_merchant_level_prior=self.young_merchant_level_prior,
            young_merchant_level_one_sided=self.young_merchant_level_one_sided,
        )
