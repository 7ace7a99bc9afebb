"""The markdown table of the suite's metrics: median and spread over the rounds."""

import math
from collections.abc import Sequence

from benchmarks.stats import Metric

_DECIMALS = {"tx/s": 0, "req/s": 0, "MiB": 0, "ms": 1, "%": 1, "x": 2, "cores": 2, "ms/req": 3}


def number(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{_DECIMALS.get(unit, 2)}f}"


def markdown_table(metrics: Sequence[Metric]) -> str:
    lines = [
        "| benchmark | metric | median | min | max | unit | target |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for m in metrics:
        low, high = min(m.values, default=math.nan), max(m.values, default=math.nan)
        lines.append(
            f"| {m.benchmark} | {m.name} | {number(m.median, m.unit)} | "
            f"{number(low, m.unit)} | {number(high, m.unit)} | {m.unit} | {m.target} |"
        )
    return "\n".join(lines)
