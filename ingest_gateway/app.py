"""The aiohttp application: routes, middlewares, and the producer/pool lifecycle."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest_gateway.alerts import BadCursor, Cursor, alerts_page
from ingest_gateway.errors import error_response
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.rate_limit import TokenBucket
from ingest_gateway.settings import GatewaySettings
from ingest_gateway.validation import Rejection, parse_transaction, read_json
from schemas import FieldError, Transaction, TransactionAccepted, encode_model
from shared.db import open_pool, timed
from shared.kafka import make_producer
from shared.ops_http import metrics_response

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_ROUTES = frozenset({"/health", "/ready", "/metrics"})

SETTINGS = web.AppKey("settings", GatewaySettings)
METRICS = web.AppKey("metrics", GatewayMetrics)
REGISTRY = web.AppKey("registry", CollectorRegistry)
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
POOL = web.AppKey("pool", AsyncConnectionPool)
BUCKET = web.AppKey("bucket", TokenBucket)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _route_label(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


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
        request.app[METRICS].http_request_duration.labels(
            route=_route_label(request), method=request.method, status=str(status)
        ).observe(time.perf_counter() - started)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_ROUTES:
        return await handler(request)
    wait = request.app[BUCKET].try_take(time.monotonic())
    if wait > 0:
        request.app[METRICS].rate_limited.inc()
        retry_after = str(max(1, round(wait + 0.5)))
        return error_response(429, "rate limit exceeded", headers={"Retry-After": retry_after})
    return await handler(request)


@web.middleware
async def reject(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Rejection as exc:
        request.app[METRICS].rejected.labels(reason=exc.reason).inc()
        return error_response(exc.status, exc.error, list(exc.detail))
    except web.HTTPRequestEntityTooLarge:
        request.app[METRICS].rejected.labels(reason="too_large").inc()
        return error_response(413, "body too large")


async def post_transaction(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    payload = await read_json(request, settings.max_body_bytes)
    now = utc_now()
    body = parse_transaction(payload, now, timedelta(seconds=settings.max_future_skew_seconds))
    txn = Transaction(id=uuid4(), received_at=now, **body.model_dump())
    if not await _publish(request.app, txn):
        return error_response(503, "transaction log unavailable, nothing was recorded; retry")
    accepted = TransactionAccepted(id=txn.id)
    return web.json_response(accepted.model_dump(mode="json"), status=202)


async def _publish(app: web.Application, txn: Transaction) -> bool:
    """Publish and wait for acks=all; False (and nothing acknowledged) on failure."""
    settings, metrics = app[SETTINGS], app[METRICS]
    started = time.perf_counter()
    try:
        await asyncio.wait_for(
            app[PRODUCER].send_and_wait(
                settings.topic_transactions, key=str(txn.id).encode(), value=encode_model(txn)
            ),
            settings.publish_timeout_seconds,
        )
    except (KafkaError, TimeoutError) as exc:
        metrics.publish_failures.inc()
        log.error("publish failed", extra={"transaction_id": str(txn.id), "error": repr(exc)})
        return False
    metrics.publish_duration.observe(time.perf_counter() - started)
    log.debug("published", extra={"transaction_id": str(txn.id)})
    return True


async def get_alerts(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limit = _parse_limit(request.query.get("limit"), settings)
    after = None
    if token := request.query.get("cursor"):
        try:
            after = Cursor.decode(token)
        except BadCursor as exc:
            raise Rejection(
                400, "invalid query", "bad_cursor", (_field("cursor", str(exc)),)
            ) from exc
    try:
        async with (
            request.app[POOL].connection() as conn,
            timed(request.app[METRICS].db_query_duration, "select_alerts"),
        ):
            items, next_cursor = await alerts_page(conn, limit, after)
    except (OperationalError, PoolTimeout):
        return error_response(503, "database unavailable")
    headers = {}
    if next_cursor is not None:
        token = next_cursor.encode()
        headers["X-Next-Cursor"] = token
        headers["Link"] = f'</alerts?limit={limit}&cursor={token}>; rel="next"'
    return web.json_response([item.model_dump(mode="json") for item in items], headers=headers)


def _field(name: str, message: str) -> FieldError:
    return FieldError(field=name, message=message)


def _parse_limit(raw: str | None, settings: GatewaySettings) -> int:
    if raw is None:
        return settings.alerts_default_limit
    if not raw.isdigit() or not 1 <= int(raw) <= settings.alerts_max_limit:
        message = f"must be an integer from 1 to {settings.alerts_max_limit}"
        raise Rejection(400, "invalid query", "bad_limit", (_field("limit", message),))
    return int(raw)


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with request.app[POOL].connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except (OperationalError, PoolTimeout) as exc:
        checks["postgres"] = f"unavailable: {type(exc).__name__}"
    try:
        await asyncio.wait_for(
            request.app[PRODUCER].partitions_for(request.app[SETTINGS].topic_transactions), 2
        )
        checks["kafka"] = "ok"
    except (KafkaError, TimeoutError) as exc:
        checks["kafka"] = f"unavailable: {type(exc).__name__}"
    ok = all(value == "ok" for value in checks.values())
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    return metrics_response(request.app[REGISTRY])


async def _dependencies(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[POOL] = await open_pool(settings.database_url, settings.database_schema, max_size=10)
    app[PRODUCER] = make_producer(settings.kafka_bootstrap_servers)
    await app[PRODUCER].start()
    yield
    # Shutdown: aiohttp has stopped accepting and drained in-flight requests by now.
    await app[PRODUCER].stop()
    await app[POOL].close()


def create_app(settings: GatewaySettings, registry: CollectorRegistry) -> web.Application:
    app = web.Application(
        middlewares=[observe, reject, rate_limit],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    app[METRICS] = GatewayMetrics.create(registry)
    app[BUCKET] = TokenBucket.full(
        settings.rate_limit_rps, settings.rate_limit_burst, time.monotonic()
    )
    app.cleanup_ctx.append(_dependencies)
    app.router.add_post("/transactions", post_transaction)
    app.router.add_get("/alerts", get_alerts)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app
