"""The overview: transactions and alerts per hour, the alert share per category, the scopes
with the most alerts, and the false-positive share among resolved alerts."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from ingest_gateway.ui.keys import READS
from ingest_gateway.ui.render import page

WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7)}
BAR_AREA = 600


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    height: float
    label: str
    count: int


def hourly_bars(rows: list[dict[str, Any]], since: datetime, hours: int) -> list[Bar]:
    """One bar per hour of the window (hours without rows are 0), heights out of 100."""
    by_hour = {row["hour"]: int(row["n"]) for row in rows}
    start = since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    counts = [
        (start + timedelta(hours=i), by_hour.get(start + timedelta(hours=i), 0))
        for i in range(hours)
    ]
    peak = max([n for _, n in counts] + [1])
    width = BAR_AREA / hours
    return [
        Bar(i * width, max(width - 1, 0.5), 100 * n / peak, f"{hour:%m-%d %H}:00", n)
        for i, (hour, n) in enumerate(counts)
    ]


async def overview(request: web.Request) -> web.Response:
    window = request.query.get("window", "24h")
    window = window if window in WINDOWS else "24h"
    now = datetime.now(UTC)
    since = now - WINDOWS[window]
    data = await request.app[READS].overview(since)
    hours = int(WINDOWS[window].total_seconds() // 3600)
    resolved = sum(int(row["n"]) for row in data["resolutions"])
    false_positives = sum(
        int(row["n"]) for row in data["resolutions"] if row["resolution"] == "false_positive"
    )
    context = {
        "window": window,
        "windows": list(WINDOWS),
        "transaction_bars": hourly_bars(data["transactions_per_hour"], since, hours),
        "alert_bars": hourly_bars(data["alerts_per_hour"], since, hours),
        "transactions_total": sum(int(r["n"]) for r in data["transactions_per_hour"]),
        "alerts_total": sum(int(r["n"]) for r in data["alerts_per_hour"]),
        "categories": data["categories"],
        "top_scopes": data["top_scopes"],
        "resolutions": data["resolutions"],
        "resolved": resolved,
        "false_positive_share": false_positives / resolved if resolved else None,
    }
    return page(request, "overview.html", context)
