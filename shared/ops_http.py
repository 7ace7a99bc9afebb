"""`/health` and `/metrics` for workers that have no API of their own."""

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[], dict[str, object]]


def metrics_response(registry: CollectorRegistry) -> web.Response:
    response = web.Response(body=generate_latest(registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


def ops_app(registry: CollectorRegistry, health: HealthCheck) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return metrics_response(registry)

    async def healthz(_: web.Request) -> web.Response:
        body = health()
        return web.json_response(body, status=200 if body.get("status") == "ok" else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", healthz)
    return app


async def start_ops_server(
    registry: CollectorRegistry, health: HealthCheck, host: str, port: int
) -> web.AppRunner:
    """Serve the ops endpoints in the current event loop; stop with `await runner.cleanup()`."""
    runner = web.AppRunner(ops_app(registry, health), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
