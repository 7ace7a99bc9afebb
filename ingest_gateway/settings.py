"""Gateway configuration (environment variables, validated at start-up)."""

import re

from pydantic import Field, field_validator, model_validator

from detector_worker.tier_settings import AlertTierSettings
from ingest_gateway.auth import SCOPES, Scope
from shared.settings import LogLevel

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class GatewaySettings(AlertTierSettings):
    """ALERT_TIERS, STRICT_ALERT_TIERS and ANOMALY_STRICT_MODE (AlertTierSettings): the tiers the
    alert page draws, read as the detector reads them."""

    host: str = "0.0.0.0"  # noqa: S104 - the API is meant to be reachable
    port: int = Field(default=8000, ge=0, le=65535)

    # API keys, stored hashed: "name:sha256hex,name2:sha256hex:analyst+read" (sha256 of the
    # key itself, then optionally its scopes joined by '+': ingest, read, analyst, admin; a
    # key without scopes may ingest and read).
    # Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'
    # and hash it with:  printf %s "$KEY" | sha256sum
    api_keys_sha256: str = ""
    # Local development only: serve the data endpoints without a key.
    auth_disabled: bool = False

    # Per API key (the seed's 5 req/s, burst 10), and for the whole process.
    rate_limit_rps: float = Field(default=5.0, gt=0)
    rate_limit_burst: float = Field(default=10.0, ge=1)
    global_rate_limit_rps: float = Field(default=1000.0, gt=0)
    global_rate_limit_burst: float = Field(default=2000.0, ge=1)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # A client that sends its headers and then stalls gets 408 and the connection closed.
    body_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    batch_max_items: int = Field(default=500, ge=1, le=10_000)
    # How long a publish may wait for acks=all before the client gets a 503. Longer than a
    # cluster's leader election: with Kafka's defaults the controller fences a dead broker
    # after broker.session.timeout.ms (9 s) and only then elects new leaders. At 10 s,
    # requests sent just after a kill -9 of a leader got 503s (tests/faults/
    # test_cluster_broker_kill.py).
    publish_timeout_seconds: float = Field(default=30.0, gt=0)
    # How long POST /transactions waits for the detector's verdict before answering 202.
    verdict_wait_seconds: float = Field(default=2.0, ge=0, le=30)
    alerts_default_limit: int = Field(default=50, ge=1)
    alerts_max_limit: int = Field(default=500, ge=1, le=10_000)
    # Dates further ahead than this are rejected as typos or clock errors.
    max_future_skew_seconds: int = Field(default=300, ge=0)
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # A key whose request died without answering (process or database gone) is usable again
    # after this long. Longer than PUBLISH_TIMEOUT_SECONDS + VERDICT_WAIT_SECONDS, so that a
    # slow request is not done twice (which would still record nothing twice).
    idempotency_claim_timeout_seconds: float = Field(default=60.0, gt=0)
    # A read (every GET) that PostgreSQL has not answered in this long gets a 503 saying so,
    # and a connection waited for longer fails the same way: a database that stops answering
    # (a dead host, a network partition: no error, just silence) held reads forever.
    database_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    shutdown_timeout_seconds: float = Field(default=15.0, gt=0)
    # The level of the one JSON line per request: below LOG_LEVEL (e.g. debug under info),
    # the access log is off.
    access_log_level: LogLevel = "info"
    # How long a sign-in to the analyst inbox (/ui/) lasts before the key is asked again.
    ui_session_hours: int = Field(default=8, ge=1, le=24 * 30)
    # Sign-in attempts to the inbox per client address and minute (the form is open: without
    # a limit it would let anyone try keys as fast as the gateway answers).
    ui_sign_in_per_minute: float = Field(default=10.0, gt=0)
    # POST /webhooks refuses URLs resolving to loopback/private/link-local addresses unless
    # this is true (tests, local demos); the notifier has the same setting.
    webhook_allow_private: bool = False

    @field_validator("api_keys_sha256")
    @classmethod
    def _well_formed_hashes(cls, value: str) -> str:
        names = [name for name, _, _ in _key_entries(value)]
        if len(names) != len(set(names)):
            raise ValueError("each key name may appear once")
        return value

    @model_validator(mode="after")
    def _keys_or_explicitly_open(self) -> "GatewaySettings":
        if not self.api_keys_sha256.strip() and not self.auth_disabled:
            raise ValueError("API_KEYS_SHA256 must be set (or AUTH_DISABLED=true for local use)")
        return self

    def api_key_hashes(self) -> dict[str, str]:
        """sha256 hex digest -> key name."""
        return {digest: name for name, digest, _ in _key_entries(self.api_keys_sha256)}

    def api_key_scopes(self) -> dict[str, frozenset[Scope]]:
        """key name -> the scopes configured for it (only keys that name theirs)."""
        return {name: scopes for name, _, scopes in _key_entries(self.api_keys_sha256) if scopes}


def _key_entries(value: str) -> list[tuple[str, str, frozenset[Scope]]]:
    """(name, digest, scopes) per entry of API_KEYS_SHA256; a name may hold ':'."""
    entries = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        head, _, digest = entry.rpartition(":")
        scopes = ""
        if not _SHA256_HEX.match(digest):
            scopes = digest
            head, _, digest = head.rpartition(":")
        if not head or not _SHA256_HEX.match(digest):
            raise ValueError("each entry must be name:<64 lowercase hex sha256>[:scope+scope]")
        entries.append(
            (head, digest, _scopes(scopes) if scopes or entry.endswith(":") else frozenset())
        )
    return entries


def _scopes(text: str) -> frozenset[Scope]:
    named = text.split("+")
    unknown = [scope for scope in named if scope not in SCOPES]
    if unknown or not text:
        raise ValueError(f"unknown scope {unknown[0] if unknown else text!r}; one of {SCOPES}")
    return frozenset(scope for scope in SCOPES if scope in named)
