"""Request middlewares, outermost first: observe, reject, authenticate, rate limit, read the
body, bound reads, idempotency."""

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime

from aiohttp import web
from psycopg import DataError, OperationalError
from psycopg_pool import PoolTimeout

from ingest_gateway.access_log import log_request
from ingest_gateway.auth import MalformedCredential
from ingest_gateway.body import UnreadableBody, answer_and_close, read_whole_body
from ingest_gateway.context import (
    ACCESS_LOG_LEVEL,
    CALLER,
    IDEMPOTENCY,
    KEYS,
    LIMITER,
    METRICS,
    PRINCIPAL,
    REPLAY_BODY,
    ROUTE_SCOPES,
    SETTINGS,
    TRANSIENT_ANSWER,
)
from ingest_gateway.deadlines import Overdue
from ingest_gateway.errors import Rejection, error_response
from ingest_gateway.idempotency import (
    REPLAYED_HEADERS,
    Claimed,
    Conflict,
    Replay,
    is_kept,
    request_fingerprint,
)
from ingest_gateway.rate_limit import retry_after
from ingest_gateway.read_bound import read_within_bound
from ingest_gateway.ui.security import SIGN_IN, UI_PREFIX, is_public_ui
from ingest_gateway.ui.signin import session_caller
from schemas import IDEMPOTENCY_KEY_PATTERN, FieldError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Liveness, readiness, metrics and the API description stay open: no key, no rate limit.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json"})


def is_open(path: str) -> bool:
    """Whether a path answers without a caller: the probes and documents above, and the
    inbox's sign-in page and static files."""
    return path in OPEN_PATHS or is_public_ui(path)


IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


# aiohttp accepts any token as a method ("FOO /alerts" gets a 405): only these get a series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The request method, or "other": bounded cardinality, whatever clients send."""
    return method if method in KNOWN_METHODS else "other"


def route_label(request: web.Request) -> str:
    """The matched route pattern: bounded cardinality, unlike the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        seconds = time.perf_counter() - started
        route, method = route_label(request), method_label(request.method)
        request.app[METRICS].request_duration(route, method, status).observe(seconds)
        log_request(request, method, route, status, seconds, request.app[ACCESS_LOG_LEVEL])


@web.middleware
async def reject(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn rejections and aiohttp's own 4xx into JSON error bodies."""
    try:
        return await handler(request)
    except Rejection as exc:
        request.app[METRICS].rejected.labels(reason=exc.reason).inc()
        return error_response(exc.status, exc.error, exc.detail)
    except UnreadableBody as exc:
        return await answer_and_close(request, exc)
    except web.HTTPRequestEntityTooLarge:
        request.app[METRICS].rejected.labels(reason="too_large").inc()
        return error_response(413, "body too large")
    except DataError as exc:
        # A value PostgreSQL cannot store slipped past validation: the caller's fault, not ours.
        log.warning("unstorable value", extra={"error": repr(exc), "path": request.path})
        return error_response(422, "a value cannot be stored (e.g. a NUL character)")
    except (OperationalError, PoolTimeout) as exc:
        # A dependency is down: say so (503) rather than failing as a server error.
        log.error("database unavailable", extra={"error": repr(exc), "path": request.path})
        return error_response(503, "database unavailable; retry later")
    except Overdue:
        # A bounded database call (a read, a session's lookup) passed its bound.
        seconds = request.app[SETTINGS].database_timeout_seconds
        log.error("database did not answer", extra={"path": request.path, "seconds": seconds})
        return error_response(503, f"database did not answer within {seconds:g} s; retry later")
    except web.HTTPException as exc:
        if exc.status >= 500:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, exc.reason, headers=headers)


@web.middleware
async def bound_reads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every read answers within DATABASE_TIMEOUT_SECONDS: a 503 saying the database did not
    answer, instead of waiting on a connection to a database that went silent. The open
    paths read no table (/ready bounds its own check)."""
    if request.method not in ("GET", "HEAD") or is_open(request.path):
        return await handler(request)
    return await read_within_bound(request, handler(request))


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_open(request.path):
        return await handler(request)
    try:
        caller = request.app[KEYS].identify(
            request.headers.get("Authorization"), request.headers.get("X-API-Key")
        )
    except MalformedCredential as exc:
        # Named, never echoed: the value may be a real key with a stray byte.
        message = "must be an API key of visible ASCII characters"
        detail = (FieldError(field=exc.header, message=message),)
        raise Rejection(400, "malformed credentials", "bad_credential", detail) from None
    if caller is None:
        # No key: a browser of the inbox with its session cookie (and CSRF token), maybe.
        caller = await session_caller(request)
    if caller is None:
        if request.path.startswith(UI_PREFIX):
            return web.Response(status=303, headers={"Location": SIGN_IN})
        return error_response(
            401,
            "a valid API key is required",
            headers={"WWW-Authenticate": 'Bearer realm="jalytics"'},
        )
    # A route registered without a scope (none should be) is an admin's only: fail closed.
    needed = request.app[ROUTE_SCOPES].get(request.match_info.route, "admin")
    if not caller.may(needed):
        return error_response(403, f"this API key lacks the {needed!r} scope")
    request[CALLER] = caller.name
    request[PRINCIPAL] = caller
    return await handler(request)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_open(request.path):
        return await handler(request)
    wait = request.app[LIMITER].try_take(request[CALLER], time.monotonic())
    if wait > 0:
        request.app[METRICS].rate_limited.inc()
        headers = {"Retry-After": retry_after(wait)}
        return error_response(429, "rate limit exceeded", headers=headers)
    return await handler(request)


@web.middleware
async def read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body before the handler (it then comes from aiohttp's cache), within
    BODY_READ_TIMEOUT_SECONDS: an UnreadableBody is answered by `reject`."""
    await read_whole_body(request)
    return await handler(request)


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    # Keys are kept per caller: an open path (sign-in, the probes) has none, and nothing to keep.
    if request.method != "POST" or key is None or CALLER not in request:
        return await handler(request)
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise Rejection(400, "invalid Idempotency-Key", "bad_idempotency_key")
    store, caller = request.app[IDEMPOTENCY], request[CALLER]
    method_path = f"{request.method} {request.path}"
    fingerprint = request_fingerprint(method_path, await request.read())
    outcome = await store.claim(caller, key, method_path, fingerprint, datetime.now(UTC))
    if isinstance(outcome, Replay):
        headers = outcome.headers | {"Idempotent-Replayed": "true"}
        return web.json_response(outcome.body, status=outcome.status, headers=headers)
    if isinstance(outcome, Conflict):
        message = (
            "Idempotency-Key was used for a different request"
            if outcome.reason == "different_request"
            else "a request with this Idempotency-Key is still in progress"
        )
        return error_response(409, message)
    assert isinstance(outcome, Claimed)
    try:
        response = await handler(request)
    except (OperationalError, PoolTimeout):
        # The 503 now, not after a second wait on the database.
        store.release_soon(caller, key, outcome)
        raise
    except BaseException:
        # Without the database the claim frees itself after the claim timeout instead.
        with suppress(OperationalError, PoolTimeout):
            await store.release(caller, key, outcome)
        raise
    await _keep_or_release(request, key, outcome, response)
    return response


async def _keep_or_release(
    request: web.Request, key: str, claim: Claimed, response: web.StreamResponse
) -> None:
    """Keep a final answer for replays; release the key after a transient one.

    The work is done and the answer true: if the database fails now, the answer still goes
    out, and the claim becomes usable again after the claim timeout."""
    store, caller = request.app[IDEMPOTENCY], request[CALLER]
    kept = (
        is_kept(response.status)
        and not request.get(TRANSIENT_ANSWER, False)
        and isinstance(response, web.Response)
        and response.body is not None
    )
    try:
        if not kept:
            await store.release(caller, key, claim)
            return
        assert isinstance(response, web.Response)
        headers = {
            name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
        }
        body = request.get(REPLAY_BODY) or json.loads(response.body)  # type: ignore[arg-type]
        await store.store(caller, key, claim, response.status, body, headers)
    except (OperationalError, PoolTimeout) as exc:
        log.error("idempotency answer not kept", extra={"error": repr(exc), "path": request.path})
