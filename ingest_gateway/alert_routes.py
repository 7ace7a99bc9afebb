"""`GET /alerts/{id}` and `PATCH /alerts/{id}`: one alert, and the analyst's changes to it;
`GET /alerts/resolutions`: how analysts resolved alerts, per scope and rule.

The first two answer the alert's detail with an ETag; a PATCH carrying `If-Match` with another
version answers 412, so two analysts never overwrite each other unknowingly.
"""

from datetime import UTC, datetime

from aiohttp import web

from ingest_gateway.alert_store import AlertNotFound, PreconditionFailed
from ingest_gateway.context import ALERTS, CALLER, METRICS
from ingest_gateway.errors import error_response
from ingest_gateway.suppression_routes import check_window
from ingest_gateway.validation import parse_model, path_uuid, read_json
from ingest_gateway.workflow import TransitionRefused, etag
from schemas.workflow import AlertDetail, AlertPatch

NO_SUCH_ALERT = "no such alert"


def _answer(alert: AlertDetail) -> web.Response:
    return web.json_response(alert.model_dump(mode="json"), headers={"ETag": etag(alert.version)})


async def get_alert(request: web.Request) -> web.Response:
    alert = await request.app[ALERTS].detail(path_uuid(request))
    if alert is None:
        return error_response(404, NO_SUCH_ALERT)
    return _answer(alert)


async def patch_alert(request: web.Request) -> web.Response:
    alert_id = path_uuid(request)
    patch = parse_model(AlertPatch, await read_json(request), "invalid alert change")
    now = datetime.now(UTC)
    if patch.suppress is not None:
        check_window(patch.suppress, now, prefix="suppress.")
    if_match = request.headers.get("If-Match")
    try:
        applied = await request.app[ALERTS].apply(alert_id, patch, request[CALLER], if_match, now)
    except AlertNotFound:
        return error_response(404, NO_SUCH_ALERT)
    except PreconditionFailed as exc:
        # The current version is in the ETag; the client's header is not echoed.
        message = "the alert changed since the version If-Match names: read it again, then retry"
        return error_response(412, message, headers={"ETag": exc.current})
    except TransitionRefused as exc:
        return error_response(409, str(exc))
    alert = applied.alert
    for change in applied.changes:
        if change.field == "resolution" and change.to_value is not None:
            request.app[METRICS].alert_resolutions.labels(
                resolution=change.to_value, rule=alert.rule
            ).inc()
    return _answer(alert)


async def get_resolutions(request: web.Request) -> web.Response:
    groups = await request.app[ALERTS].resolutions()
    return web.json_response([group.model_dump(mode="json") for group in groups])
