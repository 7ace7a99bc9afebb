"""The alert page: the transaction, its scope and baseline, why it fired (with the two
pictures of chart.py), the history of changes, and the actions (which the page's script
sends to the workflow API: `PATCH /alerts/{id}`, `POST /suppressions`)."""

from datetime import timedelta
from typing import Any
from uuid import UUID

from aiohttp import web

from ingest_gateway.ui import chart
from ingest_gateway.ui.keys import READS
from ingest_gateway.ui.render import page

RESOLUTIONS = ("confirmed_fraud", "false_positive", "expected")


async def _pictures(
    request: web.Request, alert: dict[str, Any], baseline: dict[str, Any]
) -> tuple[chart.Chart | None, chart.Chart | None]:
    amount = float(alert["amount"])
    distribution = chart.distribution(alert["rule"], baseline, amount)
    curve = chart.survival_of(alert["rule"], baseline)
    tiers = chart.tier_amounts(curve, 0.01) if curve else []
    since = alert["transaction_date"] - timedelta(days=baseline["window_days"])
    recent = await request.app[READS].recent(
        baseline["scope_kind"], baseline["scope_name"], baseline["currency"], since
    )
    timeline = chart.timeline(recent, amount, alert["transaction_date"], tiers)
    return distribution, timeline


async def alert_page(request: web.Request) -> web.Response:
    reads = request.app[READS]
    alert = await reads.alert(UUID(request.match_info["id"]))
    if alert is None:
        return page(request, "not_found.html", {}, 404)
    baseline = await reads.baseline(alert["baseline_id"])
    distribution, timeline = (None, None)
    if baseline is not None:
        distribution, timeline = await _pictures(request, alert, baseline)
    context = {
        "alert": alert,
        "baseline": baseline,
        "distribution": distribution,
        "timeline": timeline,
        "history": await reads.history(alert["id"]),
        "resolutions": RESOLUTIONS,
    }
    return page(request, "alert.html", context)
