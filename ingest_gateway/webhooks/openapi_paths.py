"""The /webhooks part of the gateway's OpenAPI document (ingest_gateway/openapi.py)."""

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from schemas.webhook import WebhookCreated, WebhookIn, WebhookOut

MODELS: list[type[BaseModel]] = [WebhookCreated, WebhookIn, WebhookOut]
_ADMIN_ONLY = "This API key lacks the admin scope"


def webhook_paths(
    ref: Callable[[type[BaseModel]], dict[str, str]],
    json: Callable[[dict[str, Any], str], dict[str, Any]],
    error: Callable[[str], dict[str, Any]],
    common: dict[str, Any],
    body_errors: dict[str, Any],
    path_id: dict[str, Any],
) -> dict[str, Any]:
    """`common`: the errors every route may answer (401, 429, 503); `body_errors`: those of a
    route that reads a JSON body."""
    tags = ["webhooks"]
    created = json(ref(WebhookCreated), "Subscribed; the secret is shown this once")
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
                "requestBody": {"required": True, **json(ref(WebhookIn), "The subscription")},
                "responses": {
                    "201": created,
                    **body_errors,
                    "403": error(_ADMIN_ONLY),
                    "422": error("Invalid fields, or a URL refused (scheme, private address)"),
                    **common,
                },
            },
            "get": {
                "operationId": "listWebhooks",
                "tags": tags,
                "summary": "Live subscriptions (admin); never their secrets",
                "responses": {
                    "200": json({"type": "array", "items": ref(WebhookOut)}, "Subscriptions"),
                    "400": error("An API key that is not visible ASCII"),
                    "403": error(_ADMIN_ONLY),
                    **common,
                },
            },
        },
        "/webhooks/{id}": {
            "delete": {
                "operationId": "deleteWebhook",
                "tags": tags,
                "summary": "End a subscription (admin); nothing more is delivered to it",
                "parameters": [path_id],
                "responses": {
                    "204": {"description": "Ended"},
                    "400": error("An API key that is not visible ASCII"),
                    "403": error(_ADMIN_ONLY),
                    "404": error("Unknown or already ended, or the id is not a UUID"),
                    **common,
                },
            }
        },
    }
