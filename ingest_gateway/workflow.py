"""The alert workflow's rules, without I/O: which status changes are allowed, what a PATCH
changes (one history row per changed field), and the version an `If-Match` must name."""

from dataclasses import dataclass

from schemas.alert import AlertStatus, Resolution
from schemas.workflow import AlertPatch, HistoryField

# open -> acknowledged -> resolved, straight to resolved, and reopening. Nothing else: a
# resolved alert is reopened before it is resolved again (so its history shows both).
ALLOWED_TRANSITIONS: frozenset[tuple[AlertStatus, AlertStatus]] = frozenset(
    {
        ("open", "acknowledged"),
        ("open", "resolved"),
        ("acknowledged", "resolved"),
        ("acknowledged", "open"),
        ("resolved", "open"),
    }
)


@dataclass(frozen=True, slots=True)
class AlertState:
    """The workflow fields of an alert."""

    status: AlertStatus
    resolution: Resolution | None
    assignee: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One history row: a field, what it was, what it became."""

    field: HistoryField
    from_value: str | None
    to_value: str | None


class TransitionRefused(Exception):
    """A status change the workflow does not allow (answered 409)."""


def _status_changes(current: AlertState, patch: AlertPatch) -> list[Change]:
    if patch.status is None:
        return []
    if (current.status, patch.status) not in ALLOWED_TRANSITIONS:
        allowed = sorted(to for start, to in ALLOWED_TRANSITIONS if start == current.status)
        raise TransitionRefused(
            f"an alert that is {current.status} cannot become {patch.status};"
            f" it may become {' or '.join(allowed)}"
        )
    changes = [Change("status", current.status, patch.status)]
    # Resolving sets the resolution; reopening clears it.
    if patch.resolution != current.resolution:
        changes.append(Change("resolution", current.resolution, patch.resolution))
    return changes


def plan(current: AlertState, patch: AlertPatch) -> tuple[AlertState, list[Change]]:
    """The state after `patch` and the changes that lead there (empty when the patch changes
    nothing and has no note). Raises TransitionRefused."""
    changes = _status_changes(current, patch)
    status = patch.status or current.status
    resolution = patch.resolution if patch.status is not None else current.resolution
    assignee = current.assignee
    if patch.changes_assignee and patch.assignee != current.assignee:
        changes.append(Change("assignee", current.assignee, patch.assignee))
        assignee = patch.assignee
    if not changes and patch.note is not None:
        changes.append(Change("note", None, None))
    return AlertState(status, resolution, assignee), changes


def etag(version: int) -> str:
    """The strong entity tag of an alert that has had `version` changes (its history only
    grows, under the row lock, so the count identifies the state)."""
    return f'"{version}"'


def if_match_holds(if_match: str | None, current: str) -> bool:
    """RFC 9110 If-Match with strong comparison: absent, `*`, or a list naming `current`."""
    if if_match is None or if_match.strip() == "*":
        return True
    return current in (tag.strip() for tag in if_match.split(","))
