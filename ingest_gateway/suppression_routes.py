"""`POST /suppressions`, `GET /suppressions`, `DELETE /suppressions/{id}`."""

from datetime import UTC, datetime, timedelta

from aiohttp import web

from ingest_gateway.alerts import query_flag
from ingest_gateway.context import CALLER, SETTINGS, SUPPRESSIONS
from ingest_gateway.errors import Rejection, error_response
from ingest_gateway.paging import Cursor, given_once, page_limit, page_response
from ingest_gateway.suppression_store import NewSuppression
from ingest_gateway.validation import parse_model, path_uuid, read_json
from schemas import FieldError
from schemas.workflow import SUPPRESSION_MAX_DAYS, SuppressionIn, SuppressionWindow

NO_SUCH_SUPPRESSION = "no such suppression"


def check_window(window: SuppressionWindow, now: datetime, prefix: str = "") -> None:
    """A rule ends in the future, and within SUPPRESSION_MAX_DAYS; raises a 422 naming the
    field otherwise."""
    end = window.ends(now)
    if now < end <= now + timedelta(days=SUPPRESSION_MAX_DAYS):
        return
    message = (
        "must be in the future"
        if end <= now
        else f"must be within {SUPPRESSION_MAX_DAYS} days from now"
    )
    detail = (FieldError(field=f"{prefix}expires_at", message=message),)
    raise Rejection(422, "invalid suppression", "invalid", detail)


async def post_suppression(request: web.Request) -> web.Response:
    body = parse_model(SuppressionIn, await read_json(request), "invalid suppression")
    now = datetime.now(UTC)
    check_window(body, now)
    rule = NewSuppression.from_request(body, request[CALLER], now)
    created = await request.app[SUPPRESSIONS].create(rule)
    return web.json_response(
        created.model_dump(mode="json"),
        status=201,
        headers={"Location": f"/suppressions/{created.id}"},
    )


async def get_suppressions(request: web.Request) -> web.Response:
    """Rules newest first, a page at a time (`limit`, `cursor`), as `GET /alerts` pages."""
    query = request.query
    given_once(query, ("include_expired", "limit", "cursor"))
    include_expired = bool(query_flag(query.get("include_expired"), "include_expired"))
    settings = request.app[SETTINGS]
    # A whole page by default: the listing returned up to the maximum before it was paged.
    limit = page_limit(query.get("limit"), settings, default=settings.alerts_max_limit)
    token = query.get("cursor")
    after = Cursor.decode(token) if token else None
    # One row more than the page: whether there is a next page.
    rules = await request.app[SUPPRESSIONS].listing(include_expired, limit + 1, after)
    return page_response(request, rules, limit)


async def delete_suppression(request: web.Request) -> web.Response:
    expired = await request.app[SUPPRESSIONS].expire(path_uuid(request))
    if expired is None:
        return error_response(404, NO_SUCH_SUPPRESSION)
    return web.json_response(expired.model_dump(mode="json"))
