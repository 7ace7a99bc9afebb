"""The OpenAPI paths of the alert workflow: an alert's detail and changes, suppression rules,
resolution counts. The scope each needs is in its description (and a 403 without it)."""

from typing import Any

from ingest_gateway.openapi_parts import (
    _BODY_ERRORS,
    _ERRORS,
    _ID,
    _STRING,
    PAGE_HEADERS,
    _error,
    _json,
    _query,
    _ref,
    _with_headers,
)
from ingest_gateway.settings import GatewaySettings
from schemas import ErrorBody
from schemas.workflow import (
    AlertDetail,
    AlertPatch,
    ResolutionGroup,
    SuppressionIn,
    SuppressionOut,
)

_ETAG = {"ETag": {**_STRING, "description": "The alert's version, for If-Match"}}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag read last: the change is refused (412) if the alert changed since",
}
_READ_ERRORS = {"400": _error("An API key that is not visible ASCII"), **_ERRORS}


def _scoped(scope: str, operation: dict[str, Any]) -> dict[str, Any]:
    return {**operation, "description": f"Needs an API key with the `{scope}` scope."}


def _alert_paths() -> dict[str, Any]:
    detail = _with_headers(_json(_ref(AlertDetail), "The alert"), _ETAG)
    return {
        "/alerts/{id}": {
            "get": _scoped(
                "read",
                {
                    "operationId": "getAlert",
                    "tags": ["alerts"],
                    "summary": "An alert with its transaction, baseline and history",
                    "parameters": [_ID],
                    "responses": {
                        "200": detail,
                        "404": _error("Unknown alert, or the id is not a UUID"),
                        **_READ_ERRORS,
                    },
                },
            ),
            "patch": _scoped(
                "analyst",
                {
                    "operationId": "changeAlert",
                    "tags": ["alerts"],
                    "summary": "Acknowledge, resolve, reopen, assign or annotate an alert",
                    "parameters": [_ID, _IF_MATCH],
                    "requestBody": {"required": True, **_json(_ref(AlertPatch), "The change")},
                    "responses": {
                        "200": detail,
                        "404": _error("Unknown alert, or the id is not a UUID"),
                        **_BODY_ERRORS,
                        "409": _error("A status change the workflow does not allow"),
                        "412": _with_headers(_error("If-Match names an older version"), _ETAG),
                        **_ERRORS,
                    },
                },
            ),
        },
        "/alerts/resolutions": {
            "get": _scoped(
                "read",
                {
                    "operationId": "countResolutions",
                    "tags": ["alerts"],
                    "summary": "Resolved alerts by category, merchant, rule and resolution",
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": _ref(ResolutionGroup)}, "The counts"
                        ),
                        **_READ_ERRORS,
                    },
                },
            )
        },
    }


def _suppression_paths(settings: GatewaySettings) -> dict[str, Any]:
    one = _json(_ref(SuppressionOut), "The rule")
    return {
        "/suppressions": {
            "post": _scoped(
                "analyst",
                {
                    "operationId": "createSuppression",
                    "tags": ["suppressions"],
                    "summary": "Mark new alerts under a rule suppressed until it expires",
                    "requestBody": {"required": True, **_json(_ref(SuppressionIn), "The rule")},
                    "responses": {
                        "201": _with_headers(
                            _json(_ref(SuppressionOut), "Created"),
                            {"Location": {**_STRING, "description": "The rule's URL"}},
                        ),
                        **_BODY_ERRORS,
                        **_ERRORS,
                    },
                },
            ),
            "get": _scoped(
                "read",
                {
                    "operationId": "listSuppressions",
                    "tags": ["suppressions"],
                    "summary": "Active rules, newest first; next page via X-Next-Cursor / Link",
                    "parameters": [
                        _query(
                            "include_expired",
                            {"type": "string", "enum": ["true", "false"]},
                            "true: expired rules too",
                        ),
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": settings.alerts_max_limit},
                            f"page size (default {settings.alerts_max_limit})",
                        ),
                        _query(
                            "cursor", {"type": "string"}, "from X-Next-Cursor of the previous page"
                        ),
                    ],
                    "responses": {
                        "200": _with_headers(
                            _json({"type": "array", "items": _ref(SuppressionOut)}, "Rules"),
                            PAGE_HEADERS,
                        ),
                        "400": _error(
                            "Bad query parameter (or one given twice), or an API key not visible"
                            " ASCII"
                        ),
                        **_ERRORS,
                    },
                },
            ),
        },
        "/suppressions/{id}": {
            "delete": _scoped(
                "analyst",
                {
                    "operationId": "expireSuppression",
                    "tags": ["suppressions"],
                    "summary": "Expire a rule now (it stays listed with include_expired)",
                    "parameters": [_ID],
                    "responses": {
                        "200": one,
                        "404": _json(_ref(ErrorBody), "Unknown rule, or the id is not a UUID"),
                        **_READ_ERRORS,
                    },
                },
            )
        },
    }


def workflow_paths(settings: GatewaySettings) -> dict[str, Any]:
    return _alert_paths() | _suppression_paths(settings)
