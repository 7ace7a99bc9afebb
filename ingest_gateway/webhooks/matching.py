"""Which subscriptions an alert goes to, and the event id it goes with."""

from dataclasses import dataclass, field
from uuid import UUID, uuid5

from schemas import Alert, Severity

SEVERITY_RANK: dict[Severity, int] = {"medium": 0, "high": 1, "critical": 2}
# Fixed forever: event ids derived from it must stay the same across releases.
EVENT_NAMESPACE = UUID("5b0f6c1e-8f4e-4a39-9f0e-3c5f2f1f7a10")


@dataclass(frozen=True)
class Subscription:
    id: UUID
    url: str
    min_severity: Severity
    category: str | None = None
    merchant: str | None = None
    secret: str = field(default="", repr=False)


def wants(subscription: Subscription, alert: Alert) -> bool:
    """A suppressed alert goes nowhere; else severity at least the minimum, and the same
    category and merchant where the subscription names one."""
    return (
        not alert.suppressed
        and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[subscription.min_severity]
        and subscription.category in (None, alert.category)
        and subscription.merchant in (None, alert.merchant)
    )


def event_id(alert_id: UUID, subscription_id: UUID) -> UUID:
    """The same for every delivery of one alert to one subscription: receivers de-duplicate
    by it, across retries and across a notifier restart."""
    return uuid5(EVENT_NAMESPACE, f"{alert_id}/{subscription_id}")
