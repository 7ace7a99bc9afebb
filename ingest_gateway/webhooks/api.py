"""`POST/GET/DELETE /webhooks` (admin scope): subscriptions, served by the gateway.

The gateway only checks a URL (http(s), resolving to public addresses unless
WEBHOOK_ALLOW_PRIVATE=true); it never calls it: the notifier does, and checks again.
"""

import secrets
import uuid
from typing import Any

from aiohttp import web

from ingest_gateway.context import CALLER, METRICS, POOL, REPLAY_BODY, SETTINGS
from ingest_gateway.errors import Rejection
from ingest_gateway.validation import parse_model, read_json
from ingest_gateway.webhooks.egress import EgressRefused, check_url
from ingest_gateway.webhooks.store import SubscriptionStore
from schemas import FieldError
from schemas.webhook import WebhookCreated, WebhookIn, WebhookOut


def _store(request: web.Request) -> SubscriptionStore:
    return SubscriptionStore(request.app[POOL], request.app[METRICS].db_query_duration)


async def post_webhook(request: web.Request) -> web.Response:
    body = parse_model(WebhookIn, await read_json(request), "invalid webhook")
    try:
        await check_url(body.url, request.app[SETTINGS].webhook_allow_private)
    except EgressRefused as exc:
        detail = (FieldError(field="url", message=str(exc)),)
        raise Rejection(422, "invalid webhook", "webhook_url", detail) from None
    row: dict[str, Any] = body.model_dump() | {
        "id": uuid.uuid4(),
        # Shown once, in this reply; 43 URL-safe characters, 256 bits.
        "secret": body.secret or secrets.token_urlsafe(32),
        "created_by": request.get(CALLER, "anonymous"),
    }
    created = WebhookCreated.model_validate(await _store(request).create(row))
    reply = created.model_dump(mode="json")
    # A retry with the same Idempotency-Key gets the subscription without its secret: the
    # secret lives in webhook_subscriptions only, never in a kept answer.
    request[REPLAY_BODY] = reply | {"secret": None}
    headers = {"Location": f"/webhooks/{created.id}"}
    return web.json_response(reply, status=201, headers=headers)


async def get_webhooks(request: web.Request) -> web.Response:
    rows = await _store(request).live()
    return web.json_response(
        [WebhookOut.model_validate(row).model_dump(mode="json") for row in rows]
    )


async def delete_webhook(request: web.Request) -> web.Response:
    if not await _store(request).delete(uuid.UUID(request.match_info["id"])):
        raise Rejection(404, "no such webhook", "not_found")
    return web.Response(status=204)
