"""Verdict v1: the value of a record on the `verdicts` topic, one per scored transaction."""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from schemas.baseline import Baseline
from schemas.types import Timestamp

Severity = Literal["medium", "high", "critical"]
Rule = Literal["tail", "zscore", "log_zscore", "low_variance"]


class Verdict(BaseModel):
    """The detector's decision on one transaction, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    transaction_id: UUID
    anomaly: bool
    severity: Severity | None = None
    rule: Rule | None = None
    # For `tail`: the z-equivalent of the tail probability (the normal quantile of 1 - p).
    z_score: float | None = None
    # P(amount >= this amount) in the scope, as the baseline estimates it (`tail` only).
    tail_probability: float | None = None
    message: str | None = None
    # The baseline the decision used, or None when no scope had enough data.
    baseline: Baseline | None = None
    scored_at: Timestamp


class VerdictReceipt(BaseModel):
    """What the gateway's answer to `POST /transactions` reads of a Verdict record: Verdict's
    own fields (tests/unit/test_receipt.py holds them to Verdict's types), the baseline only
    as there or not, everything else ignored. Validating the whole record, baseline and tail
    included, cost the gateway three times as much per verdict (docs/performance.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    transaction_id: UUID
    anomaly: bool
    severity: Severity | None = None
    z_score: float | None = None
    message: str | None = None
    baseline: dict[str, object] | None = None
