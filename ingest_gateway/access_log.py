"""One JSON line per request: what was asked, of which route, by whom, how it went.

Only bounded, non-secret values: the route pattern rather than the raw path (which may carry
anything a client typed), the name of the caller's API key and never the key, no header, no
query string, no body.

Written through the JSON handler's fast path (shared/logging.py): the line of every other
logger, at a third of the cost or less, which every request pays at the default LOG_LEVEL=info.
"""

import logging

from aiohttp import web

from ingest_gateway.context import CALLER
from shared.logging import json_lines

access_log = logging.getLogger("ingest_gateway.access")


def log_request(
    request: web.Request, method: str, route: str, status: int, seconds: float, level: int
) -> None:
    if not access_log.isEnabledFor(level):  # off (below LOG_LEVEL): build no record
        return
    fields: dict[str, object] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "caller": request.get(CALLER),
    }
    handler = json_lines()
    if handler is None:  # logging set up some other way: through it
        access_log.log(level, "request", extra=fields)
    else:
        handler.write_fields(logging.getLevelName(level), access_log.name, "request", fields)
