"""The alert workflow's pure rules: transitions, the history a change writes, If-Match."""

from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest_gateway.workflow import (
    ALLOWED_TRANSITIONS,
    AlertState,
    TransitionRefused,
    etag,
    if_match_holds,
    plan,
)
from schemas.alert import AlertStatus, Resolution
from schemas.workflow import AlertPatch

STATUSES: tuple[AlertStatus, ...] = get_args(AlertStatus)
RESOLUTIONS: tuple[Resolution, ...] = get_args(Resolution)
assignees = st.none() | st.sampled_from(["ana", "bo", "شادي"])


@st.composite
def states(draw: st.DrawFn) -> AlertState:
    status = draw(st.sampled_from(STATUSES))
    resolution = draw(st.sampled_from(RESOLUTIONS)) if status == "resolved" else None
    return AlertState(status, resolution, draw(assignees))


@st.composite
def patches(draw: st.DrawFn) -> AlertPatch:
    body: dict[str, Any] = {}
    status = draw(st.none() | st.sampled_from(STATUSES))
    if status is not None:
        body["status"] = status
    if status == "resolved":
        body["resolution"] = draw(st.sampled_from(RESOLUTIONS))
    if draw(st.booleans()):
        body["assignee"] = draw(assignees)
    if draw(st.booleans()) or not body:
        body["note"] = draw(st.text(min_size=1, max_size=20).filter(lambda t: "\x00" not in t))
    return AlertPatch.model_validate(body)


def consistent(state: AlertState) -> bool:
    return (state.status == "resolved") == (state.resolution is not None)


@given(states(), patches())
def test_a_change_is_allowed_exactly_when_its_transition_is(
    state: AlertState, patch: AlertPatch
) -> None:
    allowed = patch.status is None or (state.status, patch.status) in ALLOWED_TRANSITIONS
    if not allowed:
        with pytest.raises(TransitionRefused, match=f"that is {state.status} cannot become"):
            plan(state, patch)
        return
    after, changes = plan(state, patch)
    assert consistent(after)
    # One history row per field that changed, from what it was to what it is.
    for change in changes:
        if change.field != "note":
            assert change.from_value == getattr(state, change.field)
            assert change.to_value == getattr(after, change.field)
            assert change.from_value != change.to_value
    changed = {c.field for c in changes} - {"note"}
    for field in ("status", "resolution", "assignee"):
        assert (field in changed) == (getattr(state, field) != getattr(after, field))
    # A change without a note is a row only when something changed; a note always is one.
    assert bool(changes) == (bool(changed) or patch.note is not None)


@given(states(), st.lists(patches(), max_size=8))
def test_any_sequence_of_changes_keeps_the_state_consistent(
    state: AlertState, sequence: list[AlertPatch]
) -> None:
    for patch in sequence:
        try:
            state, _ = plan(state, patch)
        except TransitionRefused:
            continue
        assert consistent(state)


def test_reopening_clears_the_resolution_and_says_so() -> None:
    resolved = AlertState("resolved", "false_positive", "ana")
    after, changes = plan(resolved, AlertPatch(status="open"))
    assert after == AlertState("open", None, "ana")
    assert [(c.field, c.from_value, c.to_value) for c in changes] == [
        ("status", "resolved", "open"),
        ("resolution", "false_positive", None),
    ]


@pytest.mark.parametrize(
    ("start", "to"),
    [("open", "open"), ("acknowledged", "acknowledged"), ("resolved", "acknowledged")],
)
def test_the_refused_transitions_name_what_is_allowed(start: AlertStatus, to: AlertStatus) -> None:
    state = AlertState(start, "expected" if start == "resolved" else None, None)
    with pytest.raises(TransitionRefused, match=f"{start} cannot become {to}; it may become"):
        plan(state, AlertPatch(status=to))


def test_resolved_cannot_be_resolved_again_without_reopening() -> None:
    with pytest.raises(TransitionRefused):
        plan(
            AlertState("resolved", "expected", None),
            AlertPatch(status="resolved", resolution="confirmed_fraud"),
        )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": None},
        {"status": "resolved"},
        {"status": "acknowledged", "resolution": "expected"},
        {"resolution": "expected"},
        {"note": "x", "suppress": {"reason": "r", "duration_hours": 1}},
        {
            "status": "resolved",
            "resolution": "expected",
            "suppress": {"reason": "r", "duration_hours": 1, "expires_at": "2030-01-01T00:00:00Z"},
        },
        {"status": "resolved", "resolution": "expected", "suppress": {"reason": "r"}},
        {"assignee": "   "},
        {"note": "a\x00b"},
    ],
)
def test_inconsistent_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AlertPatch.model_validate(body)


def test_null_assignee_unassigns_and_absent_keeps() -> None:
    state = AlertState("open", None, "ana")
    assert plan(state, AlertPatch.model_validate({"assignee": None}))[0].assignee is None
    assert plan(state, AlertPatch(note="n"))[0].assignee == "ana"


@pytest.mark.parametrize(
    ("header", "holds"),
    [
        (None, True),
        ("*", True),
        ('"3"', True),
        ('"1", "3"', True),
        ('"2"', False),
        ('W/"3"', False),  # If-Match compares strongly: a weak tag never matches
        ("3", False),
        ("", False),
    ],
)
def test_if_match(header: str | None, holds: bool) -> None:
    assert if_match_holds(header, etag(3)) is holds
