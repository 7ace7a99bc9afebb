"""HTTP bodies of the ingest gateway (request and response), the source of its OpenAPI document."""

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.alert import AlertStatus, Resolution
from schemas.transaction import TransactionFields
from schemas.types import StoredTimestamp, Timestamp
from schemas.verdict import Rule, Severity

# HTTP wire details the router, the middlewares and the OpenAPI document all follow. Unanchored,
# as aiohttp's route patterns take them; `anchored()` for the OpenAPI document.
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Visible ASCII, 1 to 255 characters.
IDEMPOTENCY_KEY_PATTERN = "[!-~]{1,255}"


def anchored(pattern: str) -> str:
    return f"^{pattern}$"


class TransactionIn(TransactionFields):
    """`POST /transactions`: the seed body (amount, category, merchant, transaction_date)
    plus optional currency, account_id and client_transaction_id."""


class TransactionAccepted(BaseModel):
    """Reply to `POST /transactions`: `scored` with the verdict when it came in time (201),
    else `pending` (202) and the verdict follows on `GET /transactions/{id}`."""

    id: UUID
    anomaly: bool | None = None
    status: Literal["pending", "scored"] = "pending"
    severity: Severity | None = None
    alert_message: str | None = None
    z_score: float | None = None
    # "no_baseline": scored, but no scope of the transaction had BASELINE_MIN_SAMPLES yet, so
    # `anomaly: false` says nothing about the amount (the verdict's baseline is null).
    reason: Literal["no_baseline"] | None = None


class BatchIn(BaseModel):
    """`POST /transactions/batch`: items are validated one by one (see BatchItemResult)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transactions: list[Any] = Field(min_length=1)


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    detail: list[FieldError] = []


class OutcomeUnknown(ErrorBody):
    """503 from `POST /transactions`: the broker did not acknowledge in time. The transaction
    may still be recorded (the producer keeps retrying it); the same body sent again with
    `idempotency_key` gets the same `transaction_id` and is recorded at most once."""

    outcome: Literal["unknown"] = "unknown"
    transaction_id: UUID
    idempotency_key: str


class BatchItemResult(BaseModel):
    index: int
    status: int
    id: UUID | None = None
    error: str | None = None
    detail: list[FieldError] = []


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItemResult]


class ReversalIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


class ReversalOut(BaseModel):
    id: UUID
    transaction_id: UUID
    reason: str | None
    created_at: Timestamp


class AlertOut(BaseModel):
    """One entry of `GET /alerts` (seed keys first)."""

    id: UUID
    transaction_id: UUID
    alert_message: str
    severity: Severity
    created_at: Timestamp
    rule: Rule
    z_score: float | None
    # P(amount >= this amount) in the scope, as the baseline estimated it (rule `tail`, and
    # `low_variance` when it has one): 1 - Phi(z_score).
    tail_probability: float | None = None
    amount: str
    currency: str
    category: str
    merchant: str
    transaction_date: StoredTimestamp
    # The workflow (PATCH /alerts/{id}) and suppression.
    status: AlertStatus = "open"
    resolution: Resolution | None = None
    assignee: str | None = None
    suppressed: bool = False
    suppression_id: UUID | None = None


class TransactionOut(BaseModel):
    """`GET /transactions/{id}`: the stored transaction with its verdict."""

    id: UUID
    amount: str
    currency: str
    category: str
    merchant: str
    transaction_date: StoredTimestamp
    received_at: StoredTimestamp | None
    account_id: str | None
    client_transaction_id: str | None
    anomaly: bool
    severity: Severity | None
    rule: Rule | None
    z_score: float | None
    # As in AlertOut: 1 - Phi(z_score) for the rules that read a tail probability.
    tail_probability: float | None = None
    baseline_id: UUID | None
    scored_at: Timestamp
    alert_id: UUID | None
    alert_message: str | None
    reversed_at: Timestamp | None
