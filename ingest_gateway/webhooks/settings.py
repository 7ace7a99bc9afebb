"""The notifier's configuration (environment variables, validated at start-up)."""

from typing import Literal

from pydantic import Field, model_validator

from shared.settings import CommonSettings


class NotifierSettings(CommonSettings):
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from other hosts
    metrics_port: int = Field(default=9103, ge=0, le=65535)
    # Its own consumer group on the alerts topic: its commits are its own.
    webhook_consumer_group: str = Field(default="jalytics-notifier", min_length=1)
    # Where a group with no commit yet starts: `latest` (alerts from now on) or `earliest`
    # (every alert the topic still holds, e.g. to backfill a new notifier).
    webhook_start_from: Literal["latest", "earliest"] = "latest"
    # Allow URLs that resolve to loopback/private/link-local addresses (tests, local demos).
    webhook_allow_private: bool = False
    # One attempt, connection to last byte.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # How long an alert may keep being retried (from when it was read) before it is
    # dead-lettered.
    webhook_max_retry_seconds: float = Field(default=3600.0, gt=0)
    webhook_backoff_base_seconds: float = Field(default=1.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    # Consecutive failures that open a subscription's circuit, and how long it stays open
    # before one probe is let through.
    webhook_circuit_failure_threshold: int = Field(default=5, ge=1)
    webhook_circuit_open_seconds: float = Field(default=30.0, gt=0)
    # How often the subscriptions are re-read (new ones start, deleted ones stop).
    webhook_subscriptions_refresh_seconds: float = Field(default=10.0, gt=0)
    # Records read but not yet done (delivered or dead-lettered everywhere): above this,
    # reading pauses until deliveries catch up.
    webhook_max_in_flight: int = Field(default=1000, ge=1)
    shutdown_timeout_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _cap_above_base(self) -> "NotifierSettings":
        if self.webhook_backoff_cap_seconds < self.webhook_backoff_base_seconds:
            raise ValueError(
                "WEBHOOK_BACKOFF_CAP_SECONDS must be at least WEBHOOK_BACKOFF_BASE_SECONDS"
            )
        return self
