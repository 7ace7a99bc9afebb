"""Baseline v1: the value of a record on the compacted `baselines` topic (key: the scope)."""

import json
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import CurrencyCode, Label, Timestamp


class ScopeKind(StrEnum):
    CATEGORY = "category"
    MERCHANT = "merchant"


class BaselineScope(BaseModel):
    """What a baseline describes. Amounts of different currencies never share a scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ScopeKind
    name: Label
    currency: CurrencyCode

    def key(self) -> bytes:
        """The Kafka key: canonical JSON, so the compacted topic keeps one record per scope."""
        body = {"kind": self.kind.value, "name": self.name, "currency": self.currency}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def label(self) -> str:
        return f"{self.kind.value}:{self.name}:{self.currency}"


class Baseline(BaseModel):
    """Rolling statistics of the amounts of one scope over the configured window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    # Identifies this computation in the baseline_history table (the audit trail).
    id: UUID
    scope: BaselineScope
    count: int = Field(ge=0)
    mean: float
    stddev: float = Field(ge=0)
    # The same statistics of ln(amount), for the log-scale method (absent from old producers).
    log_mean: float | None = None
    log_stddev: float | None = Field(default=None, ge=0)
    window_days: int = Field(ge=1)
    computed_at: Timestamp
