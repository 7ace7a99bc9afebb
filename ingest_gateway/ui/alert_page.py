"""The alert page: the transaction, its scope and baseline, why it fired (with the two
pictures of chart.py), the history of changes, and the actions, which the page's script
sends to the workflow API (`PATCH /alerts/{id}` with If-Match, `POST /suppressions`). The
alert's detail is the workflow API's own (AlertStore.detail), read in-process."""

from datetime import datetime, timedelta
from typing import get_args
from uuid import UUID

from aiohttp import web

from ingest_gateway.context import ALERTS, SETTINGS
from ingest_gateway.ui import chart
from ingest_gateway.ui.keys import READS
from ingest_gateway.ui.render import page
from ingest_gateway.workflow import etag
from schemas.alert import Resolution
from schemas.workflow import AlertDetail, BaselineOut

RESOLUTIONS: tuple[str, ...] = get_args(Resolution)


async def _pictures(
    request: web.Request, alert: AlertDetail, baseline: BaselineOut
) -> tuple[chart.Chart | None, chart.Chart | None]:
    amount, stats = float(alert.amount), baseline.model_dump()
    tier_levels = request.app[SETTINGS].active_tiers
    distribution = chart.distribution(alert.rule, stats, amount, tier_levels)
    when = alert.transaction_date
    if not isinstance(when, datetime):  # a stored time Python cannot hold: no timeline
        return distribution, None
    curve = chart.survival_of(alert.rule, stats)
    band = chart.high_not_before(alert.rule, stats)
    tiers = chart.tier_amounts(curve, 0.01, tier_levels, band) if curve else []
    recent = await request.app[READS].recent(
        baseline.scope_kind,
        baseline.scope_name,
        baseline.currency,
        when - timedelta(days=baseline.window_days),
    )
    return distribution, chart.timeline(recent, amount, when, tiers)


async def alert_page(request: web.Request) -> web.Response:
    alert = await request.app[ALERTS].detail(UUID(request.match_info["id"]))
    if alert is None:
        return page(request, "not_found.html", {}, 404)
    distribution, timeline = (None, None)
    if alert.baseline is not None:
        distribution, timeline = await _pictures(request, alert, alert.baseline)
    context = {
        "alert": alert,
        "baseline": alert.baseline,
        "distribution": distribution,
        "timeline": timeline,
        "history": alert.history,
        "etag": etag(alert.version),
        "resolutions": RESOLUTIONS,
    }
    return page(request, "alert.html", context)
