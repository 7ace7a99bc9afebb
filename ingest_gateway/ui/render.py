"""Rendering a page: its template with what every page needs (assets, CSRF token, caller)."""

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ingest_gateway.context import CALLER
from ingest_gateway.ui.keys import ASSETS, SESSION


def page(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    session = request.get(SESSION)
    common = {
        "asset": request.app[ASSETS].url,
        "csrf_token": session.csrf_token if session else "",
        "caller": request.get(CALLER),
        "signed_in": session is not None,
        "path": request.path,
    }
    return aiohttp_jinja2.render_template(template, request, {**common, **context}, status=status)
