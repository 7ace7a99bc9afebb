"""The aiohttp application: routes, middlewares, and the dependencies' lifecycle."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import timedelta
from functools import partial

from aiohttp import web
from aiokafka.errors import KafkaConnectionError, KafkaError, UnknownTopicOrPartitionError
from prometheus_client import CollectorRegistry
from psycopg import OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingest_gateway.alert_routes import get_alert, get_resolutions, patch_alert
from ingest_gateway.alert_store import AlertStore
from ingest_gateway.alerts import get_alerts
from ingest_gateway.auth import ApiKeys, Scope
from ingest_gateway.context import (
    ACCESS_LOG_LEVEL,
    ALERTS,
    IDEMPOTENCY,
    KEYS,
    LIMITER,
    METRICS,
    POOL,
    PRODUCER,
    PUBLISHER,
    READ_MODEL,
    REGISTRY,
    REVERSALS,
    ROUTE_SCOPES,
    SETTINGS,
    SUPPRESSIONS,
    VERDICTS,
)
from ingest_gateway.deadlines import answer_within
from ingest_gateway.idempotency import IdempotencyStore
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.middleware import (
    Handler,
    authenticate,
    bound_reads,
    idempotency,
    observe,
    rate_limit,
    read_body,
    reject,
)
from ingest_gateway.openapi import openapi_document
from ingest_gateway.publishing import Publisher
from ingest_gateway.rate_limit import RateLimiter, TokenBucket
from ingest_gateway.read_model import ReadModel
from ingest_gateway.reversals import Reversals
from ingest_gateway.settings import GatewaySettings
from ingest_gateway.suppression_routes import (
    delete_suppression,
    get_suppressions,
    post_suppression,
)
from ingest_gateway.suppression_store import SuppressionStore
from ingest_gateway.transactions import get_transaction, post_batch, post_reversal, post_transaction
from ingest_gateway.ui.routes import add_ui
from ingest_gateway.verdicts import VerdictWaiter
from ingest_gateway.webhooks.api import delete_webhook, get_webhooks, post_webhook
from schemas import UUID_PATTERN
from shared.db import open_pool, read_any_stored_timestamp
from shared.kafka import RenewableProducer, make_producer
from shared.logging import level_name
from shared.migrations import prepare_schema
from shared.ops_http import metrics_response

log = logging.getLogger(__name__)
READY_CHECK_SECONDS = 2.0
KAFKA_START_WAIT_SECONDS = 5.0


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _select_one(pool: AsyncConnectionPool) -> None:
    async with pool.connection(timeout=READY_CHECK_SECONDS) as conn:
        await conn.execute("SELECT 1")


async def _ask_kafka(producers: RenewableProducer, verdicts: VerdictWaiter, topic: str) -> None:
    """A metadata request answered by a broker now, naming the topic. partitions_for() would
    answer from the producer's cached metadata: "ok" with every broker gone."""
    if not producers.started:  # still trying since start-up (POSTs get a 503 meanwhile)
        raise KafkaConnectionError("not connected yet")
    if not verdicts.started:  # POSTs are published, but nobody reads their verdicts yet
        raise KafkaConnectionError("verdicts not followed yet")
    metadata = await producers.current.client.fetch_all_metadata()
    if not metadata.partitions_for_topic(topic):
        raise UnknownTopicOrPartitionError(topic)


async def _postgres_check(app: web.Application) -> str:
    try:
        # The whole check is bounded, the query too: a database that stops answering held
        # the probe forever on a connection the pool already had.
        await answer_within(READY_CHECK_SECONDS, _select_one(app[POOL]))
        return "ok"
    except TimeoutError:  # answer_within's Overdue included: the probe says what it is
        return "unavailable: TimeoutError"
    except (OperationalError, PoolTimeout) as exc:
        return f"unavailable: {type(exc).__name__}"


async def _kafka_check(app: web.Application) -> str:
    try:
        topic = app[SETTINGS].topic_transactions
        await asyncio.wait_for(_ask_kafka(app[PRODUCER], app[VERDICTS], topic), READY_CHECK_SECONDS)
        return "ok"
    except (KafkaError, TimeoutError) as exc:
        return f"unavailable: {type(exc).__name__}"


async def ready(request: web.Request) -> web.Response:
    # Side by side, each bounded: both silent (a partitioned host) is still an answer in 2 s.
    postgres, kafka = await asyncio.gather(_postgres_check(request.app), _kafka_check(request.app))
    checks = {"postgres": postgres, "kafka": kafka}
    ok = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    return metrics_response(request.app[REGISTRY])


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS]))


async def _connect_kafka(app: web.Application) -> None:
    await app[PRODUCER].start_when_reachable()
    await app[VERDICTS].start_when_reachable()
    log.info("connected to Kafka")


def _log_connect_failure(task: "asyncio.Task[None]") -> None:
    """A connect that ended in an error start_with_backoff does not retry: said at once (the
    gateway keeps serving and /ready keeps saying Kafka is unavailable), not at shutdown."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("gave up connecting to Kafka", exc_info=error)


async def _dependencies(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await asyncio.to_thread(prepare_schema, settings)
    app[POOL] = await open_pool(
        settings.database_url,
        settings.database_schema,
        max_size=10,
        configure=read_any_stored_timestamp,
        connection_timeout=settings.database_timeout_seconds,
    )
    app[IDEMPOTENCY] = IdempotencyStore(
        app[POOL],
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        claim_timeout=timedelta(seconds=settings.idempotency_claim_timeout_seconds),
    )
    # No linger: a client waits for this ack. Records queue anyway while the one request in
    # flight per partition (idempotent producer) is out, so batches still form under load.
    app[PRODUCER] = RenewableProducer(
        lambda: make_producer(settings.kafka_bootstrap_servers, linger_ms=0)
    )
    app[PUBLISHER] = Publisher(
        app[PRODUCER], settings.topic_transactions, settings.publish_timeout_seconds, app[METRICS]
    )
    app[READ_MODEL] = ReadModel(app[POOL], app[METRICS])
    app[REVERSALS] = Reversals(app[POOL], app[METRICS])
    app[ALERTS] = AlertStore(app[POOL], app[METRICS])
    app[SUPPRESSIONS] = SuppressionStore(app[POOL], app[METRICS])
    app[VERDICTS] = VerdictWaiter(
        settings.kafka_bootstrap_servers, settings.topic_verdicts, settings.verdict_wait_seconds
    )
    # Waited for a while (a gateway that serves from its first request when Kafka is there),
    # then in the background: without Kafka the gateway still serves reads and /health, and
    # says what is missing in /ready and in a 503 to each POST, until a broker answers.
    connecting = asyncio.create_task(_connect_kafka(app), name="connect-kafka")
    connecting.add_done_callback(_log_connect_failure)
    await asyncio.wait({connecting}, timeout=KAFKA_START_WAIT_SECONDS)
    if settings.auth_disabled:
        log.warning("AUTH_DISABLED=true: the data endpoints answer without an API key")
    yield
    # Shutdown: aiohttp has stopped accepting and let in-flight requests finish by now.
    connecting.cancel()
    with suppress(asyncio.CancelledError, Exception):  # an error was logged when it happened
        await connecting
    await app[VERDICTS].stop()
    await app[PRODUCER].stop()  # flushes anything still buffered
    await app[IDEMPOTENCY].drain(settings.database_timeout_seconds)
    await app[POOL].close()


def _add_scoped(
    app: web.Application, method: str, path: str, handler: Handler, scope: Scope
) -> None:
    """Register a route that only a key holding `scope` may call (auth.py says who holds
    which)."""
    route = app.router.add_route(method, path, handler)
    app[ROUTE_SCOPES][route] = scope
    if method == "GET":
        # HEAD as aiohttp's add_get gives it (headers, no body): monitors and caches ask it.
        app[ROUTE_SCOPES][app.router.add_route("HEAD", path, handler)] = scope


def create_app(settings: GatewaySettings, registry: CollectorRegistry) -> web.Application:
    app = web.Application(
        middlewares=[
            observe,
            reject,
            authenticate,
            rate_limit,
            read_body,
            # After the body is read: a GET whose body stalls is a 408 (read_body), not a 503
            # "database did not answer".
            bound_reads,
            idempotency,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    app[METRICS] = GatewayMetrics.create(registry)
    app[ACCESS_LOG_LEVEL] = logging.getLevelName(level_name(settings.access_log_level))
    app[KEYS] = ApiKeys(
        settings.api_key_hashes(),
        disabled=settings.auth_disabled,
        scopes=settings.api_key_scopes(),
    )
    now = time.monotonic()
    app[LIMITER] = RateLimiter(
        settings.rate_limit_rps,
        settings.rate_limit_burst,
        TokenBucket.full(settings.global_rate_limit_rps, settings.global_rate_limit_burst, now),
    )
    app.cleanup_ctx.append(_dependencies)
    app[ROUTE_SCOPES] = {}
    scoped = partial(_add_scoped, app)
    scoped("POST", "/transactions", post_transaction, "ingest")
    scoped("POST", "/transactions/batch", post_batch, "ingest")
    # The id is constrained so that /transactions/batch never reads as a transaction id.
    scoped("GET", f"/transactions/{{id:{UUID_PATTERN}}}", get_transaction, "read")
    scoped("POST", f"/transactions/{{id:{UUID_PATTERN}}}/reversal", post_reversal, "ingest")
    scoped("GET", "/alerts", get_alerts, "read")
    scoped("GET", "/alerts/resolutions", get_resolutions, "read")
    scoped("GET", f"/alerts/{{id:{UUID_PATTERN}}}", get_alert, "read")
    scoped("PATCH", f"/alerts/{{id:{UUID_PATTERN}}}", patch_alert, "analyst")
    scoped("POST", "/suppressions", post_suppression, "analyst")
    scoped("GET", "/suppressions", get_suppressions, "read")
    scoped("DELETE", f"/suppressions/{{id:{UUID_PATTERN}}}", delete_suppression, "analyst")
    # The analyst inbox: pages under /ui/, outside the OpenAPI document.
    add_ui(app, scoped)
    scoped("POST", "/webhooks", post_webhook, "admin")
    scoped("GET", "/webhooks", get_webhooks, "admin")
    scoped("DELETE", f"/webhooks/{{id:{UUID_PATTERN}}}", delete_webhook, "admin")
    # Open to everybody (OPEN_PATHS): probes, metrics and the API document.
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    return app
