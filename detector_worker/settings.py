"""Detector configuration (environment variables, validated at start-up)."""

from pydantic import Field, model_validator

from detector_worker.scoring import Method, ScoringConfig, Tiers
from shared.settings import CommonSettings


class DetectorSettings(CommonSettings):
    consumer_group: str = "jalytics-detector"
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from other hosts
    metrics_port: int = Field(default=9101, ge=0, le=65535)
    batch_max_records: int = Field(default=1000, ge=1, le=100_000)
    # How long a batch collects records. It bounds latency and sets the batch size under load
    # (Faust's drainer pauses while a batch is processed): 20 ms gave an end-to-end p99 of
    # 62 ms at 1,000 tx/s for ~10% less peak throughput than 50 ms (docs/performance.md).
    batch_max_wait_seconds: float = Field(default=0.02, gt=0, le=10)
    baseline_catchup_timeout_seconds: float = Field(default=60, gt=0)
    session_timeout_seconds: float = Field(default=10, ge=6, le=300)

    anomaly_strict_mode: bool = False
    # log_zscore by the evidence of docs/accuracy.md (3x fewer false alerts, same recall).
    anomaly_method: Method = "log_zscore"
    baseline_min_samples: int = Field(default=30, ge=2)
    z_medium: float = Field(default=2.0, gt=0)
    z_high: float = Field(default=3.0, gt=0)
    z_critical: float = Field(default=5.0, gt=0)
    strict_z_medium: float = Field(default=1.5, gt=0)
    strict_z_high: float = Field(default=2.5, gt=0)
    strict_z_critical: float = Field(default=4.0, gt=0)
    stable_stddev: float = Field(default=0.01, ge=0)
    stable_multiplier: float = Field(default=2.0, gt=1)
    stable_margin: float = Field(default=50.0, ge=0)

    @model_validator(mode="after")
    def _ordered_tiers(self) -> "DetectorSettings":
        for prefix in ("z", "strict_z"):
            medium, high, critical = (
                getattr(self, f"{prefix}_{tier}") for tier in ("medium", "high", "critical")
            )
            if not medium <= high <= critical:
                raise ValueError(
                    f"{prefix.upper()}_MEDIUM <= {prefix.upper()}_HIGH <= "
                    f"{prefix.upper()}_CRITICAL must hold"
                )
        return self

    def scoring_config(self) -> ScoringConfig:
        return ScoringConfig(
            tiers=Tiers(self.z_medium, self.z_high, self.z_critical),
            strict_tiers=Tiers(self.strict_z_medium, self.strict_z_high, self.strict_z_critical),
            strict_mode=self.anomaly_strict_mode,
            method=self.anomaly_method,
            min_samples=self.baseline_min_samples,
            stable_stddev=self.stable_stddev,
            stable_multiplier=self.stable_multiplier,
            stable_margin=self.stable_margin,
        )
