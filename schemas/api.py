"""HTTP bodies of the ingest gateway."""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from schemas.types import Amount, CurrencyCode, Label, OptionalRef, Timestamp
from schemas.verdict import Rule, Severity


class TransactionIn(BaseModel):
    """`POST /transactions`: the seed body plus optional fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount
    category: Label
    merchant: Label
    transaction_date: Timestamp
    currency: CurrencyCode = "USD"
    account_id: OptionalRef = None
    client_transaction_id: OptionalRef = None


class TransactionAccepted(BaseModel):
    """Reply once the broker acknowledged the transaction; the verdict follows asynchronously."""

    id: UUID
    anomaly: bool | None = None
    status: Literal["pending"] = "pending"


class AlertOut(BaseModel):
    """One entry of `GET /alerts` (seed keys first)."""

    id: UUID
    transaction_id: UUID
    alert_message: str
    severity: Severity
    created_at: Timestamp
    rule: Rule
    z_score: float | None
    amount: str
    currency: str
    category: str
    merchant: str
    transaction_date: Timestamp


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    detail: list[FieldError] = []
