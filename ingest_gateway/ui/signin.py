"""Signing in and out of the inbox, and who a request with a session cookie comes from."""

import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import web

from ingest_gateway.auth import Caller
from ingest_gateway.context import KEYS
from ingest_gateway.errors import Rejection
from ingest_gateway.rate_limit import RateLimiter, TokenBucket, retry_after
from ingest_gateway.read_bound import read_within_bound
from ingest_gateway.ui.keys import SESSION, SESSIONS, SIGN_IN_LIMITER
from ingest_gateway.ui.render import page
from ingest_gateway.ui.sessions import COOKIE, clear_cookie, csrf_holds, form_field, set_cookie

INBOX = "/ui/"


async def session_caller(request: web.Request) -> Caller | None:
    """The caller behind the request's session cookie, if it holds a live session of a key
    still configured with the analyst scope; a state change without the session's CSRF token
    is refused (403)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id or SESSIONS not in request.app:
        return None
    # Bounded as every read is: a database gone silent answers a 503 (`reject`), not never.
    session = await read_within_bound(
        request, request.app[SESSIONS].find(session_id, datetime.now(UTC))
    )
    caller = request.app[KEYS].named(session.key_name) if session else None
    if session is None or caller is None or not caller.may("analyst"):
        return None
    if not await csrf_holds(request, session):
        raise Rejection(403, "this change must carry the session's CSRF token", "csrf")
    request[SESSION] = session
    return caller


async def sign_in_page(request: web.Request) -> web.Response:
    return page(request, "sign_in.html", {"error": None})


def _same_origin(request: web.Request) -> bool:
    """A form posted from another site (login CSRF) names that site in Origin. The host is
    compared, not the scheme: behind a TLS-terminating proxy the browser's https origin
    reaches the gateway over http, and the host it names may be in X-Forwarded-Host (a header
    another site's form cannot set)."""
    origin = request.headers.get("Origin")
    hosts = (request.host, request.headers.get("X-Forwarded-Host"))
    return origin is None or urlsplit(origin).netloc in hosts


def sign_in_limiter(per_minute: float, now: float) -> RateLimiter:
    """A bucket per client address, `per_minute` attempts saved up at most. No global bucket
    worth the name: one address's guessing must not lock every analyst out."""
    rate = per_minute / 60
    return RateLimiter(rate, per_minute, TokenBucket.full(rate * 10_000, per_minute * 10_000, now))


async def sign_in(request: web.Request) -> web.Response:
    wait = request.app[SIGN_IN_LIMITER].try_take(request.remote or "", time.monotonic())
    if wait > 0:
        error = "Too many sign-in attempts from this address: try again in a minute."
        response = page(request, "sign_in.html", {"error": error}, 429)
        response.headers["Retry-After"] = retry_after(wait)
        return response
    field = await form_field(request, "api_key")
    if field is None:
        error = "The form could not be read: send it as UTF-8 application/x-www-form-urlencoded."
        return page(request, "sign_in.html", {"error": error}, 400)
    key = field.strip()
    caller = request.app[KEYS].holder(key) if key and _same_origin(request) else None
    if caller is None:
        return page(request, "sign_in.html", {"error": "That is not a valid API key."}, 401)
    if not caller.may("analyst"):
        error = "This API key lacks the analyst scope: the inbox needs an analyst's key."
        return page(request, "sign_in.html", {"error": error}, 403)
    store = request.app[SESSIONS]
    # A new id at every sign-in (no fixation); the session the browser held before ends.
    await store.close(request.cookies.get(COOKIE, ""))
    session_id, _ = await store.open(caller.name, datetime.now(UTC))
    response = web.Response(status=303, headers={"Location": INBOX})
    set_cookie(response, request, session_id, store.lifetime)
    return response


async def sign_out(request: web.Request) -> web.Response:
    """The session is deleted, not just forgotten by the browser: a copied cookie dies too."""
    await request.app[SESSIONS].close(request.cookies.get(COOKIE, ""))
    response = web.Response(status=303, headers={"Location": "/ui/sign-in"})
    clear_cookie(response, request)
    return response


async def to_inbox(_: web.Request) -> web.Response:
    return web.Response(status=303, headers={"Location": INBOX})
