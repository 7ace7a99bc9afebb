"""Baseline v1: the value of a record on the compacted `baselines` topic (key: the scope)."""

import json
from datetime import UTC, date
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

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


_OMITTED_WHEN_ABSENT = ("top_price", "uncapped_shape")


class TailModel(BaseModel):
    """A scope's upper tail, estimated from its own amounts without assuming their shape.

    P(amount >= x) is read from `amounts`/`survival` (the empirical survival function at a
    few knots, ascending amounts, where the window holds enough samples above the knot to
    trust it) and, past the last knot, from a generalized Pareto tail fitted to the amounts
    above `threshold`: exceedance * (1 + shape * (x - threshold) / scale) ** (-1 / shape).
    The shape is never below 0 (an exponential tail at least): a negative shape has a finite
    end point past which every amount would get probability 0.

    Amounts are known to within `bin_ratio` (the histogram's bins: x falls in bin
    floor(ln x / ln bin_ratio)), so an amount is read at the lower edge of its bin: "as rare
    as its bin", which keeps a point mass (a price paid by 5 % of customers) at its share.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    amounts: list[float] = Field(min_length=1, max_length=64)
    survival: list[float] = Field(min_length=1, max_length=64)
    threshold: float = Field(gt=0)
    exceedance: float = Field(gt=0, le=1)
    shape: float = Field(ge=0)
    scale: float = Field(gt=0)
    bin_ratio: float = Field(default=1.02, gt=1, le=2)
    # Today's level of the scope's amounts over the window's average level (a slow inflation
    # the window trails): an amount is read as amount / level_ratio.
    level_ratio: float = Field(default=1.0, gt=0)
    # How fast that level moves: the trend's change of ln(level) per day. An amount dated d
    # days before the baseline's day (`Baseline.window_end`, UTC) is read at the level of
    # its own day, level_ratio * exp(-level_slope * d), within 0.5-2x the window's: a late or
    # backfilled transaction is judged by the level of its day, not today's. 0: no trend.
    level_slope: float = 0.0
    # Each UTC hour's level over the scope's (0-23; absent: no time-of-day seasonality): an
    # amount at hour h is read as amount / (level_ratio * hour_ratios[h]).
    hour_ratios: list[Annotated[float, Field(gt=0)]] | None = Field(
        default=None, min_length=24, max_length=24
    )
    # Each UTC weekday's level over the scope's (Monday first; absent: no weekly
    # seasonality): an amount dated on weekday d is read as amount / (level_ratio *
    # hour_ratios[h] * weekday_ratios[d]).
    weekday_ratios: list[Annotated[float, Field(gt=0)]] | None = Field(
        default=None, min_length=7, max_length=7
    )
    # The window's top price, where its tail past it is the fixed-price rule's (a toll's
    # truck class, a plan: baseline_worker.tail, `TailFit.price_top`), at its bin's lower
    # edge; absent: none. An amount at or below it is never read past it, whatever the
    # levels (a level below 1 from a mix with fewer of the dearest price would read the
    # price itself as a new one), and one up to `top_price_reprice` above it is at most
    # medium (`TOP_PRICE_REPRICE`), as a fixed price's repricing: learned, not alerted on.
    top_price: float | None = Field(default=None, gt=0)
    # The shape the merchant's own amounts read, where the cap from its category's peers
    # (baseline_worker.peers, `TailFit.peer_cap`) lowered it to `shape`: a tail that earlier
    # spikes made look heavier than its trade's. Absent: not capped. Explanation only; the
    # scorer reads `shape`.
    uncapped_shape: float | None = Field(default=None, ge=0)

    @model_serializer(mode="wrap")
    def _without_absent_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Left out when absent, so that a consumer of before these fields (which forbids
        # unknown keys) still reads every tail but those that carry one while a rollout is
        # half way.
        data = handler(self)
        if isinstance(data, dict):
            for name in _OMITTED_WHEN_ABSENT:
                if data.get(name) is None:
                    data.pop(name, None)
        return data

    @model_validator(mode="after")
    def _knots_pair_up(self) -> "TailModel":
        if len(self.amounts) != len(self.survival):
            raise ValueError("amounts and survival must have the same length")
        return self


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
    # The upper tail of the amounts (absent from old producers and for fixed prices).
    tail: TailModel | None = None
    window_days: int = Field(ge=1)
    computed_at: Timestamp
    # The window's last day (UTC): the newest day with stored transactions
    # (baseline_worker.compute.window_anchor), the day the tail's level is for. Absent: the
    # day of `computed_at`, which is the window's end while the stream is current; stated
    # when the window ends earlier (a history loaded or replayed after the fact, a quiet
    # stream), and left out otherwise, so that a consumer of before this field (which
    # forbids unknown keys) reads the steady state's documents during a rollout. Upgrade the
    # detectors and gateways before the baseline worker.
    window_end: date | None = Field(default=None, exclude_if=lambda day: day is None)

    def last_day(self) -> date:
        """The window's last day (UTC)."""
        return self.window_end or self.computed_at.astimezone(UTC).date()
