"""The alert page's pictures, as geometry for an inline SVG. Pure: no I/O, no clock.

The distribution picture is the scope's P(amount >= x) over its window, on a log scale, read
the way the rule that fired read it (the fitted tail, or the normal / log-normal statistics),
with the tier thresholds the detector scores with (ALERT_TIERS, or STRICT_ALERT_TIERS in strict
mode) drawn where that curve crosses each tier's rarity, and the transaction's amount marked.
The timeline is the scope's recent transactions over time.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detector_worker.scoring import ScoringConfig, Tiers
from detector_worker.tail import HeldTail, survival
from schemas import TailModel
from schemas.rarity import probability_of

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40
Survival = Callable[[float], float]


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    kind: str


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    kind: str


@dataclass(frozen=True, slots=True)
class Chart:
    path: str
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    dots: list[Dot]
    summary: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT


def survival_of(rule: str, baseline: dict[str, Any]) -> Survival | None:
    """P(amount >= x) as the rule read it, or None when the baseline holds too little."""
    tail, mean, stddev = baseline.get("tail"), baseline["mean"], baseline["stddev"]
    if rule in ("tail", "low_variance") and tail:
        held = HeldTail.of(TailModel.model_validate(tail))
        return lambda x: survival(held, x)
    if rule == "log_zscore" and baseline.get("log_stddev"):
        mu, sigma = baseline["log_mean"], baseline["log_stddev"]
        return lambda x: probability_of((math.log(x) - mu) / sigma)
    if stddev > 0:
        return lambda x: probability_of((x - mean) / stddev)
    return None


def amount_at(curve: Survival, probability: float, low: float, high: float) -> float | None:
    """The amount where the (non-increasing) curve falls to `probability`, by bisection."""
    while curve(high) > probability:
        high *= 2
        if high > 1e15:
            return None
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if curve(middle) > probability else (low, middle)
    return high


def tier_amounts(
    curve: Survival, low: float, tiers: Tiers, band: float | None = None
) -> list[tuple[str, float]]:
    """(severity, amount where it starts) at the tiers the detector scores with; high and
    critical not before `band` (`high_not_before`)."""
    named = (("medium", tiers.medium), ("high", tiers.high), ("critical", tiers.critical))
    found = [
        (name, amount_at(curve, probability_of(z), low, max(low, 1.0) * 2)) for name, z in named
    ]
    return [
        (name, amount if name == "medium" or band is None else max(amount, band))
        for name, amount in found
        if amount is not None
    ]


def high_not_before(rule: str, baseline: dict[str, Any]) -> float | None:
    """Up to where a `tail` verdict past a merchant's top price is at most medium, at the
    detector's default share (detector_worker.scoring._repricing; the hour's and the
    trend's level left out: the chart reads the scope at its window's level)."""
    tail = baseline.get("tail") or {}
    top = tail.get("top_price")
    if rule != "tail" or not top or baseline.get("scope_kind") != "merchant":
        return None
    return float(top) * (1 + ScoringConfig().top_price_reprice)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = 10 ** math.floor(math.log10(max((high - low) / count, 1e-9)))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _money(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def distribution(
    rule: str, baseline: dict[str, Any], amount: float, tier_levels: Tiers
) -> Chart | None:
    curve = survival_of(rule, baseline)
    if curve is None:
        return None
    low = max(min(float(baseline["mean"] - baseline["stddev"]), amount) * 0.5, 0.01)
    tiers = tier_amounts(curve, low, tier_levels, high_not_before(rule, baseline))
    high = max([amount, *(x for _, x in tiers)]) * 1.15
    floor = max(min(probability_of(tier_levels.critical) / 10, curve(amount) / 10), 1e-15)
    decades = math.ceil(-math.log10(floor))

    def x_of(value: float) -> float:
        return LEFT + (value - low) / (high - low) * (WIDTH - LEFT - RIGHT)

    def y_of(p: float) -> float:
        depth = min(-math.log10(max(p, 10.0**-decades)), decades) / decades
        return TOP + depth * (HEIGHT - TOP - BOTTOM)

    steps = [low + (high - low) * i / 160 for i in range(161)]
    path = "M" + " L".join(f"{x_of(x):.1f},{y_of(curve(x)):.1f}" for x in steps)
    lines = [
        Line(x_of(x), TOP, x_of(x), HEIGHT - BOTTOM, f"{name} ≥ {_money(x)}", name)
        for name, x in tiers
    ]
    lines.append(
        Line(
            x_of(amount),
            TOP,
            x_of(amount),
            HEIGHT - BOTTOM,
            f"this transaction: {_money(amount)}",
            "transaction",
        )
    )
    x_ticks = [Tick(x_of(v), _money(v)) for v in _nice_ticks(low, high)]
    y_ticks = [
        Tick(y_of(10.0**-d), f"1e-{d}" if d else "1")
        for d in range(0, decades + 1, max(1, decades // 5))
    ]
    rarity = curve(amount)
    summary = (
        f"P(amount ≥ {_money(amount)}) ≈ {rarity:.2g} in this scope; tiers start at "
        + ", ".join(f"{name} {_money(x)}" for name, x in tiers)
    )
    return Chart(path, lines, x_ticks, y_ticks, [], summary)


def timeline(
    recent: Sequence[dict[str, Any]], amount: float, when: datetime, tiers: list[tuple[str, float]]
) -> Chart | None:
    """The scope's recent transactions (amount over time), this one ringed, tier lines drawn."""
    points = [
        (row["transaction_date"], float(row["amount"]), row["severity"] or "normal")
        for row in recent
        if isinstance(row["transaction_date"], datetime)
    ]
    points.append((when, amount, "transaction"))
    start, end = min(p[0] for p in points), max(p[0] for p in points)
    span = max((end - start).total_seconds(), 1.0)
    top = max([p[1] for p in points] + [x for _, x in tiers if x < amount * 2]) * 1.1

    def x_of(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * (WIDTH - LEFT - RIGHT)

    def y_of(value: float) -> float:
        return HEIGHT - BOTTOM - value / top * (HEIGHT - TOP - BOTTOM)

    dots = [Dot(x_of(moment), y_of(value), kind) for moment, value, kind in points]
    lines = [
        Line(LEFT, y_of(x), WIDTH - RIGHT, y_of(x), f"{name} ≥ {_money(x)}", name)
        for name, x in tiers
        if x <= top
    ]
    y_ticks = [Tick(y_of(v), _money(v)) for v in _nice_ticks(0, top)]
    x_ticks = [Tick(x_of(m), m.strftime("%m-%d %H:%M")) for m in (start, end)]
    summary = (
        f"{len(points) - 1} recent transactions of this scope"
        f" from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    )
    return Chart("", lines, x_ticks, y_ticks, dots, summary)
