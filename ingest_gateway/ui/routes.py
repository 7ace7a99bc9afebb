"""The inbox's routes and its share of the application (templates, assets, stores)."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ingest_gateway.auth import Scope
from ingest_gateway.context import METRICS, POOL, SETTINGS
from ingest_gateway.ui.alert_page import alert_page
from ingest_gateway.ui.assets import PREFIX, Assets
from ingest_gateway.ui.inbox import inbox, inbox_updates
from ingest_gateway.ui.keys import ASSETS, READS, SESSIONS, SIGN_IN_LIMITER
from ingest_gateway.ui.overview import overview
from ingest_gateway.ui.queries import UiReads
from ingest_gateway.ui.security import SIGN_IN, secure_headers
from ingest_gateway.ui.sessions import SessionStore
from ingest_gateway.ui.signin import sign_in, sign_in_limiter, sign_in_page, sign_out, to_inbox
from schemas import UUID_PATTERN

TEMPLATES = Path(__file__).with_name("templates")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ScopedRoute = Callable[[str, str, Handler, Scope], None]


def _when(value: object) -> str:
    """A stored time as analysts read it (UTC); a value PostgreSQL could not convert as is."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


async def _stores(app: web.Application) -> AsyncIterator[None]:
    app[SESSIONS] = SessionStore(app[POOL], timedelta(hours=app[SETTINGS].ui_session_hours))
    app[READS] = UiReads(app[POOL], app[METRICS])
    yield


async def _static(request: web.Request) -> web.Response:
    return request.app[ASSETS].response(request, request.match_info["name"])


def add_ui(app: web.Application, scoped: ScopedRoute) -> None:
    """Every page needs an analyst's session (or key); sign-in and static files are open."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        filters={"when": _when},
    )
    app[ASSETS] = Assets()
    app[SIGN_IN_LIMITER] = sign_in_limiter(app[SETTINGS].ui_sign_in_per_minute, time.monotonic())
    app.cleanup_ctx.append(_stores)  # after the gateway's own: the pool is open by then
    app.on_response_prepare.append(secure_headers)
    app.router.add_get("/ui", to_inbox)
    app.router.add_get(SIGN_IN, sign_in_page)
    app.router.add_post(SIGN_IN, sign_in)
    app.router.add_get(PREFIX + "{name}", _static)
    scoped("POST", "/ui/sign-out", sign_out, "analyst")
    scoped("GET", "/ui/", inbox, "analyst")
    scoped("GET", "/ui/inbox/updates", inbox_updates, "analyst")
    scoped("GET", f"/ui/alerts/{{id:{UUID_PATTERN}}}", alert_page, "analyst")
    scoped("GET", "/ui/overview", overview, "analyst")
