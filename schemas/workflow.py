"""HTTP bodies of the alert workflow: an alert's detail and history, the changes an analyst
makes (PATCH), suppression rules, and resolution counts."""

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.alert import AlertStatus, Resolution
from schemas.api import AlertOut, TransactionOut
from schemas.types import Amount, CurrencyCode, Label, Timestamp
from schemas.verdict import Rule

HistoryField = Literal["status", "resolution", "assignee", "note"]

# The longest note and reason kept; PostgreSQL text cannot hold NUL.
NOTE_MAX_CHARS = 2000
# A suppression ends within this many days of its creation: a forgotten rule must not
# silence a scope for good.
SUPPRESSION_MAX_DAYS = 366
Note = Annotated[
    str, StringConstraints(min_length=1, max_length=NOTE_MAX_CHARS, pattern=r"^[^\x00]+$")
]
Assignee = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]+$"),
]


class SuppressionWindow(BaseModel):
    """When a suppression ends: at `expires_at`, or `duration_hours` after its creation
    (exactly one of the two)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Note
    expires_at: Timestamp | None = None
    duration_hours: int | None = Field(default=None, ge=1, le=SUPPRESSION_MAX_DAYS * 24)

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.expires_at is None) == (self.duration_hours is None):
            raise ValueError("give exactly one of expires_at and duration_hours")
        return self

    def ends(self, now: datetime) -> datetime:
        """When a rule made `now` from this window expires."""
        if self.expires_at is not None:
            return self.expires_at
        return now + timedelta(hours=self.duration_hours or 0)


class AlertPatch(BaseModel):
    """`PATCH /alerts/{id}`: at least one field. `resolution` comes exactly with
    `status: resolved`; `suppress` only with `resolution: expected` (a rule for the alert's
    category, merchant and currency, made in the same transaction)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: AlertStatus | None = None
    resolution: Resolution | None = None
    # null unassigns; absent leaves the assignee as it is.
    assignee: Assignee | None = None
    note: Note | None = None
    suppress: SuppressionWindow | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        named = (self.status, self.resolution, self.note)
        if all(value is None for value in named) and not self.changes_assignee:
            raise ValueError("give at least one of status, resolution, assignee, note")
        if (self.status == "resolved") != (self.resolution is not None):
            raise ValueError("resolution is required exactly when status is resolved")
        if self.suppress is not None and self.resolution != "expected":
            raise ValueError("suppress comes only with resolution expected")
        return self

    @property
    def changes_assignee(self) -> bool:
        """Whether the body names the assignee (null included, which unassigns)."""
        return "assignee" in self.model_fields_set


class HistoryEntry(BaseModel):
    """One change to an alert, as kept in its append-only history."""

    id: int
    changed_at: Timestamp
    actor: str
    field: HistoryField
    from_value: str | None
    to_value: str | None
    note: str | None


class BaselineOut(BaseModel):
    """The baseline an alert was judged against, as the baseline worker recorded it."""

    id: UUID
    scope_kind: Literal["category", "merchant"]
    scope_name: str
    currency: str
    sample_count: int
    mean: float
    stddev: float
    log_mean: float | None
    log_stddev: float | None
    # The fitted upper tail (schemas.baseline.TailModel), when the worker stored one.
    tail: dict[str, Any] | None
    window_days: int
    computed_at: Timestamp
    # The window's last day (UTC): computed_at's, or the newest stored transaction's where
    # the window ended earlier (a history loaded after the fact; schemas.Baseline.window_end).
    window_end: date


class AlertDetail(AlertOut):
    """`GET /alerts/{id}` (and the answer to a PATCH): the alert, its transaction, its
    baseline (null once pruned from the history) and every change, oldest first. `version`
    counts the changes; the ETag header carries it for `If-Match`."""

    updated_at: Timestamp | None
    version: int
    transaction: TransactionOut
    baseline: BaselineOut | None
    history: list[HistoryEntry]


class SuppressionIn(SuppressionWindow):
    """`POST /suppressions`: new alerts whose transaction matches every given field (and
    whose amount lies within [min_amount, max_amount]) are stored and published marked
    suppressed, and neither webhooked nor paged. A rule needs a category, a merchant or an
    amount bound: one matching everything would silence the whole system."""

    category: Label | None = None
    merchant: Label | None = None
    currency: CurrencyCode | None = None
    min_amount: Amount | None = None
    max_amount: Amount | None = None

    @model_validator(mode="after")
    def _narrow(self) -> Self:
        bounds = (self.category, self.merchant, self.min_amount, self.max_amount)
        if all(value is None for value in bounds):
            raise ValueError("give a category, a merchant or an amount bound")
        if self.min_amount and self.max_amount and self.min_amount > self.max_amount:
            raise ValueError("min_amount must not exceed max_amount")
        return self


class SuppressionOut(BaseModel):
    id: UUID
    category: str | None
    merchant: str | None
    currency: str | None
    min_amount: str | None
    max_amount: str | None
    reason: str
    expires_at: Timestamp
    created_by: str
    created_at: Timestamp
    source_alert_id: UUID | None
    active: bool


class ResolutionGroup(BaseModel):
    """Resolved alerts of one scope and rule, by resolution: the labels a backtest needs."""

    category: str
    merchant: str
    rule: Rule
    confirmed_fraud: int
    false_positive: int
    expected: int
