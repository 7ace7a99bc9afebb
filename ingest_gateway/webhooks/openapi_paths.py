"""The /webhooks part of the gateway's OpenAPI document (ingest_gateway/openapi.py)."""

from typing import Any

from pydantic import BaseModel

from ingest_gateway.openapi_parts import _BODY_ERRORS, _ERRORS, _ID, _error, _json, _ref
from schemas.webhook import WebhookCreated, WebhookIn, WebhookOut

MODELS: list[type[BaseModel]] = [WebhookCreated, WebhookIn, WebhookOut]
_ADMIN_ONLY = "This API key lacks the admin scope"


def webhook_paths() -> dict[str, Any]:
    tags = ["webhooks"]
    created = _json(_ref(WebhookCreated), "Subscribed; the secret is shown this once")
    created["headers"] = {"Location": {"schema": {"type": "string"}, "description": "Its URL"}}
    return {
        "/webhooks": {
            "post": {
                "operationId": "createWebhook",
                "tags": tags,
                "summary": "Subscribe a URL to alerts (admin); signed deliveries",
                "description": (
                    "The URL must be http(s) and resolve to public addresses (unless the "
                    "gateway runs with WEBHOOK_ALLOW_PRIVATE=true). The gateway resolves it "
                    "but never calls it. Without `secret`, one is generated."
                ),
                "requestBody": {"required": True, **_json(_ref(WebhookIn), "The subscription")},
                "responses": {
                    "201": created,
                    **_BODY_ERRORS,
                    "403": _error(_ADMIN_ONLY),
                    "422": _error("Invalid fields, or a URL refused (scheme, private address)"),
                    **_ERRORS,
                },
            },
            "get": {
                "operationId": "listWebhooks",
                "tags": tags,
                "summary": "Live subscriptions (admin); never their secrets",
                "responses": {
                    "200": _json({"type": "array", "items": _ref(WebhookOut)}, "Subscriptions"),
                    "400": _error("An API key that is not visible ASCII"),
                    "403": _error(_ADMIN_ONLY),
                    **_ERRORS,
                },
            },
        },
        "/webhooks/{id}": {
            "delete": {
                "operationId": "deleteWebhook",
                "tags": tags,
                "summary": "End a subscription (admin); nothing more is delivered to it",
                "parameters": [_ID],
                "responses": {
                    "204": {"description": "Ended"},
                    "400": _error("An API key that is not visible ASCII"),
                    "403": _error(_ADMIN_ONLY),
                    "404": _error("Unknown or already ended, or the id is not a UUID"),
                    **_ERRORS,
                },
            }
        },
    }
