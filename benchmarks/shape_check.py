"""How rare the fitted tail reads an amount of known rarity, before any replay (docs/accuracy.md,
round 8): draws of a known family, fitted by `baseline_worker.tail.fit_tail` and read by
`detector_worker.tail.survival` at the amount whose true P(amount >= x) is p.

    .venv/bin/python -m benchmarks.shape_check --draws 40 --estimators pwm zhang hybrid

Per family, sample size, p and shape estimator: the median of p read / p true over the draws,
and how many draws read the amount more than 2x too rare (p read < p / 2: the false-alert side)
and more than 2x too common (p read > 2p: the recall side). Amounts are the families' own
(benchmarks/families.py: rounded to cents), with no level, hour or weekday: the tail alone.
"""

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from baseline_worker.histogram import histogram
from baseline_worker.tail import ShapeEstimator, TailFit, fit_tail
from benchmarks.families import AmountFamily, Gamma, LogNormal, Lomax
from detector_worker.tail import HeldTail, survival

_WHEN = datetime(2026, 1, 1, tzinfo=UTC)

FAMILIES: dict[str, AmountFamily] = {
    "Lomax a=1.5": Lomax(scale=300.0, alpha=1.5),
    "Lomax a=2": Lomax(scale=300.0, alpha=2.0),
    "Lomax a=3": Lomax(scale=300.0, alpha=3.0),
    "Lomax a=5": Lomax(scale=300.0, alpha=5.0),
    "gamma k=4": Gamma(shape=4.0, scale=15.0),
    "log-normal s=0.6": LogNormal(median_amount=40.0, sigma=0.6),
}


@dataclass(frozen=True)
class Reading:
    median_ratio: float  # median over the draws of p read / p true
    too_rare: int  # draws with p read < p true / 2
    too_common: int  # draws with p read > 2 p true


def quantile(family: AmountFamily, p: float) -> float:
    """The amount whose true survival is p (bisection: the families are monotone)."""
    low, high = 0.01, 1.0
    while family.survival(high, _WHEN) > p:
        low, high = high, high * 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if family.survival(middle, _WHEN) > p else (low, middle)
    return high


def ratios(
    family: AmountFamily, size: int, ps: Sequence[float], fit: TailFit, draws: int, seed: int
) -> list[list[float]]:
    """Per p, the draws' p read / p true (the same draws for every fit of one seed)."""
    rng = random.Random(seed)
    amounts = [quantile(family, p) for p in ps]
    out: list[list[float]] = [[] for _ in ps]
    for _ in range(draws):
        bins = histogram(family.sample(rng, _WHEN) for _ in range(size))
        model = fit_tail(bins, fit)
        assert model is not None
        tail = HeldTail.of(model)
        for i, x in enumerate(amounts):
            out[i].append(survival(tail, x) / family.survival(x, _WHEN))
    return out


def reading(values: Sequence[float]) -> Reading:
    return Reading(
        statistics.median(values),
        sum(1 for r in values if r < 0.5),
        sum(1 for r in values if r > 2.0),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[900, 4500])
    parser.add_argument("--ps", type=float, nargs="+", default=[1e-4, 3e-4])
    parser.add_argument(
        "--estimators", nargs="+", choices=get_args(ShapeEstimator), default=["pwm", "zhang"]
    )
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    head = " | ".join(f"p={p:g}: median / 2x rare / 2x common" for p in args.ps)
    print(f"| family | samples | estimator | {head} | seconds |")
    print("|---|---:|---|" + "---|" * len(args.ps) + "---:|")
    for name in args.families:
        for size in args.sizes:
            for estimator in args.estimators:
                started = time.perf_counter()
                fit = TailFit(shape_estimator=estimator)
                per_p = ratios(FAMILIES[name], size, args.ps, fit, args.draws, args.seed)
                cells = " | ".join(
                    f"{r.median_ratio:.2f} / {r.too_rare} / {r.too_common}"
                    for r in map(reading, per_p)
                )
                took = time.perf_counter() - started
                print(f"| {name} | {size} | {estimator} | {cells} | {took:.1f} |", flush=True)


if __name__ == "__main__":
    main()
