"""Webhooks: the subscription API's bodies and the event POSTed to a subscriber."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.alert import Alert
from schemas.types import Label
from schemas.verdict import Severity

# Long enough to be unguessable; the notifier signs with it, so it is stored as given.
MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 256
MAX_URL_CHARS = 2048
# The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
SIGNATURE_HEADER = "Jalytics-Signature"
EVENT_ID_HEADER = "Jalytics-Event-Id"


class WebhookIn(BaseModel):
    """`POST /webhooks`: where to deliver, which alerts, and optionally the signing secret
    (else one is generated; either way it is shown once, in the reply)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        description="http(s) URL resolving to public addresses",
        examples=["https://93.184.216.34/hooks/jalytics"],
    )
    min_severity: Severity = "critical"
    category: Label | None = None
    merchant: Label | None = None
    secret: str | None = Field(
        default=None, min_length=MIN_SECRET_CHARS, max_length=MAX_SECRET_CHARS, pattern=r"^[!-~]+$"
    )


class WebhookOut(BaseModel):
    """A subscription as `GET /webhooks` lists it: never its secret."""

    id: UUID
    url: str
    min_severity: Severity
    category: str | None
    merchant: str | None
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    """Reply to `POST /webhooks`: the only time the secret is shown. A replay of the answer
    (the same Idempotency-Key and body) has `secret: null`: it is never kept outside the
    subscription; a caller who lost it deletes the subscription and makes another."""

    secret: str | None


class WebhookEvent(BaseModel):
    """The JSON body POSTed to a subscriber. `event_id` is the same on every redelivery of
    one alert to one subscription: receivers de-duplicate by it (delivery is at least once)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    event_id: UUID
    type: Literal["alert.created"] = "alert.created"
    subscription_id: UUID
    alert: Alert
