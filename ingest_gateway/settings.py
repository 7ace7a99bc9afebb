"""Gateway configuration (environment variables, validated at start-up)."""

from pydantic import Field

from shared.settings import CommonSettings


class GatewaySettings(CommonSettings):
    host: str = "0.0.0.0"  # noqa: S104 - the API is meant to be reachable
    port: int = Field(default=8000, ge=0, le=65535)
    rate_limit_rps: float = Field(default=5.0, gt=0)
    rate_limit_burst: float = Field(default=10.0, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    publish_timeout_seconds: float = Field(default=10.0, gt=0)
    alerts_default_limit: int = Field(default=50, ge=1)
    alerts_max_limit: int = Field(default=500, ge=1, le=10_000)
    # Dates further ahead than this are rejected as typos or clock errors.
    max_future_skew_seconds: int = Field(default=300, ge=0)
    shutdown_timeout_seconds: float = Field(default=15.0, gt=0)
