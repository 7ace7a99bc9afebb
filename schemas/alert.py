"""Alert v1: the value of a record on the `alerts` topic (key: the transaction id).

Delivery is at least once: subscribers de-duplicate by ``transaction_id``.
"""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from schemas.baseline import Baseline
from schemas.types import Amount, CurrencyCode, Label, Timestamp
from schemas.verdict import Rule, Severity

# The analyst workflow of an alert (PATCH /alerts/{id}); stored on the alert's row.
AlertStatus = Literal["open", "acknowledged", "resolved"]
Resolution = Literal["confirmed_fraud", "false_positive", "expected"]


class Alert(BaseModel):
    """An anomalous transaction, explained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    id: UUID
    transaction_id: UUID
    severity: Severity
    alert_message: str
    rule: Rule
    z_score: float | None
    # P(amount >= this amount) in the scope (`tail` rule only); z_score is its z-equivalent.
    tail_probability: float | None = None
    baseline: Baseline
    amount: Amount
    currency: CurrencyCode
    category: Label
    merchant: Label
    transaction_date: Timestamp
    created_at: Timestamp
    # Under a live suppression rule: stored and published, but never webhooked or paged.
    suppressed: bool = False
    suppression_id: UUID | None = None
