"""The gateway's OpenAPI 3.1 document, built from the pydantic models in `schemas/`.

Served at `/openapi.json`; tests check it against the router and schemathesis checks the
live gateway against it.
"""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ingest_gateway.openapi_parts import (
    _BODY_ERRORS,
    _ERRORS,
    _ID,
    _REF,
    _STRING,
    PAGE_HEADERS,
    _either,
    _error,
    _json,
    _query,
    _ref,
    _with_headers,
)
from ingest_gateway.openapi_workflow import workflow_paths
from ingest_gateway.settings import GatewaySettings
from ingest_gateway.webhooks import openapi_paths as webhooks
from schemas import (
    IDEMPOTENCY_KEY_PATTERN,
    AlertOut,
    BatchIn,
    BatchResult,
    ErrorBody,
    OutcomeUnknown,
    ReversalIn,
    ReversalOut,
    TransactionAccepted,
    TransactionIn,
    TransactionOut,
    anchored,
)
from schemas.workflow import (
    AlertDetail,
    AlertPatch,
    ResolutionGroup,
    SuppressionIn,
    SuppressionOut,
)

_MODELS: list[type[BaseModel]] = [
    AlertDetail,
    AlertOut,
    AlertPatch,
    BatchIn,
    BatchResult,
    ErrorBody,
    OutcomeUnknown,
    ReversalIn,
    ReversalOut,
    ResolutionGroup,
    SuppressionIn,
    SuppressionOut,
    TransactionAccepted,
    TransactionIn,
    TransactionOut,
    *webhooks.MODELS,
]
# Answers, documented as serialized; the other models are request bodies.
_ANSWER_SUFFIXES = ("Out", "Result", "Accepted", "Body", "Unknown", "Detail", "Group", "Created")
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": anchored(IDEMPOTENCY_KEY_PATTERN)},
    "description": (
        "Retries with the same key and the same body bytes replay the first success; "
        "another body under the key gets 409."
    ),
}
# Every answer to an ingest carries the key to retry with (the client's, or a new one).
_INGEST_HEADERS = {
    "Idempotency-Key": {**_STRING, "description": "Send it again with the same body to retry"},
}
# On an answer replayed for a retry with the same Idempotency-Key (POSTs only).
_REPLAYED = {
    "Idempotent-Replayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "true: the answer first given to this Idempotency-Key, replayed",
    }
}
_PREFER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "respond-async: answer 202 at once, as wait=false",
}
_TRANSACTION_HEADERS = {
    **_INGEST_HEADERS,
    **_REPLAYED,
    "X-Transaction-Id": {**_STRING, "description": "The transaction's id"},
}


def _paths(settings: GatewaySettings) -> dict[str, Any]:
    alert_list = {"type": "array", "items": _ref(AlertOut)}
    return {
        "/transactions": {
            "post": {
                "operationId": "ingestTransaction",
                "tags": ["transactions"],
                "summary": "Ingest one transaction; waits briefly for the verdict",
                "parameters": [
                    _IDEMPOTENCY,
                    _PREFER,
                    _query("wait", {"type": "boolean"}, "false: answer 202 at once, do not wait"),
                ],
                "requestBody": {"required": True, **_json(_ref(TransactionIn), "The transaction")},
                "responses": {
                    "201": _with_headers(
                        _json(_ref(TransactionAccepted), "Published and scored"),
                        _TRANSACTION_HEADERS,
                    ),
                    "202": _with_headers(
                        _json(_ref(TransactionAccepted), "Published; verdict pending"),
                        _TRANSACTION_HEADERS,
                    ),
                    **_BODY_ERRORS,
                    **_ERRORS,
                    "503": _either(
                        "Outcome unknown (Kafka did not acknowledge in time: retry with the"
                        " same body and Idempotency-Key), or PostgreSQL or Kafka unavailable"
                        " before anything was published",
                        OutcomeUnknown,
                        ErrorBody,
                    ),
                },
            }
        },
        "/transactions/batch": {
            "post": {
                "operationId": "ingestBatch",
                "tags": ["transactions"],
                "summary": "Ingest many transactions; one result per item",
                "parameters": [_IDEMPOTENCY],
                "requestBody": {"required": True, **_json(_ref(BatchIn), "The transactions")},
                "responses": {
                    "200": _with_headers(
                        _json(_ref(BatchResult), "Per-item results"),
                        _INGEST_HEADERS | _REPLAYED,
                    ),
                    **_BODY_ERRORS,
                    **_ERRORS,
                    "503": _either(
                        "No item acknowledged (outcome unknown, per item), or PostgreSQL or"
                        " Kafka unavailable before anything was published",
                        BatchResult,
                        ErrorBody,
                    ),
                },
            }
        },
        "/transactions/{id}": {
            "get": {
                "operationId": "getTransaction",
                "tags": ["transactions"],
                "summary": "A stored transaction with its verdict",
                "parameters": [_ID],
                "responses": {
                    "200": _json(_ref(TransactionOut), "The transaction"),
                    "400": _error("An API key that is not visible ASCII"),
                    # The route only matches a UUID: any other id is no resource at all.
                    "404": _error("Unknown, not yet scored, or the id is not a UUID"),
                    **_ERRORS,
                },
            }
        },
        "/transactions/{id}/reversal": {
            "post": {
                "operationId": "reverseTransaction",
                "tags": ["transactions"],
                "summary": "Reverse (refund) a transaction, once",
                "parameters": [_ID, {**_IDEMPOTENCY, "required": True}],
                "requestBody": {"required": False, **_json(_ref(ReversalIn), "Why")},
                "responses": {
                    "201": _with_headers(_json(_ref(ReversalOut), "Recorded"), _REPLAYED),
                    "404": _error("Unknown transaction, or the id is not a UUID"),
                    **_BODY_ERRORS,
                    **_ERRORS,
                },
            }
        },
        "/alerts": {
            "get": {
                "operationId": "listAlerts",
                "tags": ["alerts"],
                "summary": "Alerts, newest first; next page via X-Next-Cursor / Link",
                "parameters": [
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": settings.alerts_max_limit},
                        f"page size (default {settings.alerts_default_limit})",
                    ),
                    _query("cursor", {"type": "string"}, "from X-Next-Cursor of the previous page"),
                    _query("severity", {"type": "string"}, "medium, high, critical (comma list)"),
                    _query("category", {"type": "string"}, "exact category"),
                    _query("merchant", {"type": "string"}, "exact merchant"),
                    _query(
                        "since", {"type": "string", "format": "date-time"}, "created at or after"
                    ),
                    _query("until", {"type": "string", "format": "date-time"}, "created before"),
                ],
                "responses": {
                    "200": _with_headers(_json(alert_list, "A page of alerts"), PAGE_HEADERS),
                    "400": _error(
                        "Bad query parameter (or one given twice), or an API key not visible ASCII"
                    ),
                    **_ERRORS,
                },
            }
        },
        **workflow_paths(settings),
        **webhooks.webhook_paths(),
        "/health": {
            "get": {
                "operationId": "health",
                "tags": ["operations"],
                "summary": "Alive",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "Alive")},
            }
        },
        "/ready": {
            "get": {
                "operationId": "ready",
                "tags": ["operations"],
                "summary": "Kafka and PostgreSQL reachable",
                "security": [],
                "responses": {
                    "200": _json({"type": "object"}, "Ready"),
                    "503": _json({"type": "object"}, "Not ready"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "tags": ["operations"],
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "tags": ["operations"],
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def openapi_document(settings: GatewaySettings) -> dict[str, Any]:
    _, definitions = models_json_schema(
        [
            (
                model,
                "serialization" if model.__name__.endswith(_ANSWER_SUFFIXES) else "validation",
            )
            for model in _MODELS
        ],
        ref_template=_REF,
    )
    schemas = definitions.get("$defs", {})
    schemas["BatchIn"]["properties"]["transactions"]["maxItems"] = settings.batch_max_items
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Jalytics ingest gateway",
            "version": "1.0.0",
            "description": "Transactions in, explained alerts out.",
        },
        "tags": [
            {"name": "transactions", "description": "Ingest, read and reverse transactions"},
            {"name": "alerts", "description": "The alerts the detector raised, and their workflow"},
            {"name": "suppressions", "description": "Rules under which new alerts are marked"},
            {"name": "webhooks", "description": "Signed alert deliveries to your URLs (admin)"},
            {"name": "operations", "description": "Health, readiness, metrics; no API key"},
        ],
        "paths": _paths(settings),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
