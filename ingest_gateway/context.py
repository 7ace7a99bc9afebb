"""What the handlers find on the application, typed (aiohttp AppKeys)."""

from aiohttp import web
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from ingest_gateway.alert_store import AlertStore
from ingest_gateway.auth import ApiKeys, Caller, Scope
from ingest_gateway.idempotency import IdempotencyStore
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.publishing import Publisher
from ingest_gateway.rate_limit import RateLimiter
from ingest_gateway.read_model import ReadModel
from ingest_gateway.reversals import Reversals
from ingest_gateway.settings import GatewaySettings
from ingest_gateway.suppression_store import SuppressionStore
from ingest_gateway.verdicts import VerdictWaiter
from shared.kafka import RenewableProducer

SETTINGS = web.AppKey("settings", GatewaySettings)
METRICS = web.AppKey("metrics", GatewayMetrics)
REGISTRY = web.AppKey("registry", CollectorRegistry)
KEYS = web.AppKey("api_keys", ApiKeys)
LIMITER = web.AppKey("rate_limiter", RateLimiter)
PRODUCER = web.AppKey("producer", RenewableProducer)
POOL = web.AppKey("pool", AsyncConnectionPool)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
VERDICTS = web.AppKey("verdicts", VerdictWaiter)
PUBLISHER = web.AppKey("publisher", Publisher)
READ_MODEL = web.AppKey("read_model", ReadModel)
REVERSALS = web.AppKey("reversals", Reversals)
ALERTS = web.AppKey("alerts", AlertStore)
SUPPRESSIONS = web.AppKey("suppressions", SuppressionStore)
# The logging level of the one line per request (ACCESS_LOG_LEVEL), as a number.
ACCESS_LOG_LEVEL = web.AppKey("access_log_level", int)

# The scope each route requires, by route (app.py registers every route with one).
ROUTE_SCOPES = web.AppKey("route_scopes", dict[web.AbstractRoute, Scope])

# Set by the authentication middleware: the name of the caller's API key, and the caller.
CALLER = web.RequestKey("caller", str)
PRINCIPAL = web.RequestKey("principal", Caller)
# The seconds the request's reads have left: all of them together (a session's lookup, then
# the page's) answer within DATABASE_TIMEOUT_SECONDS (`read_within_bound`).
READ_BUDGET = web.RequestKey("read_budget", float)
# Set by a handler whose 2xx answer holds a transient part (a batch item answered 503): such an
# answer is not kept for Idempotency-Key replays.
TRANSIENT_ANSWER = web.RequestKey("transient_answer", bool)
# Set by a handler whose answer shows something only once (a webhook's secret): the body kept
# for Idempotency-Key replays instead of the answer's own, so no copy of it is stored.
REPLAY_BODY = web.RequestKey("replay_body", dict[str, object])
