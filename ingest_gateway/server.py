"""Serving the application: aiohttp's runner, except for requests it cannot even parse.

aiohttp answers a malformed request line or header line (a stray CR, a vertical tab, a NUL,
obs-fold, a space before the colon, a bare LF) with a plain-text 400 that quotes the
offending line, and logs that line at ERROR. The line is often `Authorization` or
`X-API-Key`: the key would land in the log and be echoed to whoever sent it. Here such a
request gets a JSON 400 naming no byte of it, and one warning line without the exception's
text.
"""

import asyncio
import logging
import signal

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ingest_gateway.errors import error_response

log = logging.getLogger(__name__)


class _QuietRequestHandler(web.RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        log.warning(
            "unparseable HTTP request refused",
            extra={"status": status, "error": type(exc).__name__, "remote": request.remote},
        )
        response = error_response(status, "malformed HTTP request")
        response.force_close()  # the rest of the stream cannot be trusted to frame a request
        return response


class _QuietServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """An AppRunner whose connections answer unparseable requests without quoting them."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp offers no setting for the handler class: swap the server's class, which
        # only adds the __call__ above (tests/e2e/test_hostile_http.py holds this to account).
        server.__class__ = _QuietServer
        return server


async def serve(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, let in-flight requests finish (up to
    the timeout) and run the app's cleanup, which flushes the producer (as web.run_app)."""
    runner = GatewayRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # An event, not an exception: in-flight requests must not be cancelled with the loop.
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("gateway listening", extra={"addresses": _addresses(runner)})
        await stop.wait()
        log.info("gateway stopping: draining in-flight requests, flushing the producer")
    finally:
        await runner.cleanup()
    log.info("gateway stopped")


def _addresses(runner: web.AppRunner) -> list[str]:
    """host:port of each bound socket: the port actually listened on, even for PORT=0."""
    return [f"{address[0]}:{address[1]}" for address in runner.addresses]


def run(app: web.Application, host: str, port: int, shutdown_timeout: float) -> None:
    asyncio.run(serve(app, host, port, shutdown_timeout))
