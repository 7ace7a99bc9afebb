"""What scoring one transaction costs, per method, in one process (no I/O).

    .venv/bin/python -m benchmarks.scoring_cost --rounds 5

A category and a merchant baseline fitted by the baseline worker's own code from 3,000
log-normal amounts each; 20,000 transactions drawn from the same shape (about 1 % of them
outliers at 10-50x) are scored by `detector_worker.scoring.score` with production's
defaults for each method. Reported: the median over rounds of the mean µs per transaction
(verdict model included, as the pipeline builds it).
"""

import argparse
import math
import random
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from baseline_worker.compute import ScopeStats
from baseline_worker.histogram import histogram
from baseline_worker.recompute import to_baseline
from baseline_worker.stats import Moments
from benchmarks.support import index
from detector_worker.scoring import ScoringConfig, score
from schemas import Baseline, BaselineScope, ScopeKind, Transaction

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _amount(rng: random.Random) -> Decimal:
    value = math.exp(rng.gauss(3, 0.8)) * (rng.uniform(10, 50) if rng.random() < 0.01 else 1)
    return Decimal(f"{value:.2f}").max(Decimal("0.01"))


def _stats(kind: ScopeKind, name: str, rng: random.Random) -> ScopeStats:
    amounts = [_amount(rng) for _ in range(3000)]
    moments = Moments()
    for amount in amounts:
        moments += Moments.of(amount)
    scope = BaselineScope(kind=kind, name=name, currency="USD")
    return ScopeStats(scope, moments, histogram(amounts))


def _seasonal(baseline: Baseline) -> Baseline:
    """The baseline with a level per hour and per weekday: the read's longest path."""
    if baseline.tail is None:
        return baseline
    levels = {"hour_ratios": [0.8, 1.25] * 12, "weekday_ratios": [0.9] * 5 + [1.3] * 2}
    return baseline.model_copy(update={"tail": baseline.tail.model_copy(update=levels)})


def measure(rounds: int, transactions: int, seasonal: bool = False) -> dict[str, list[float]]:
    rng = random.Random(7)
    baselines = [
        to_baseline(_stats(ScopeKind.CATEGORY, "food", rng), 30, NOW),
        to_baseline(_stats(ScopeKind.MERCHANT, "Cafe", rng), 30, NOW),
    ]
    table = index([_seasonal(b) for b in baselines] if seasonal else baselines)
    txns = [
        Transaction(
            id=uuid4(), amount=_amount(rng), category="food", merchant="Cafe", transaction_date=NOW
        )
        for _ in range(transactions)
    ]
    results: dict[str, list[float]] = {}
    for method in ("tail", "log_zscore", "zscore"):
        config = ScoringConfig(method=method)
        for _ in range(rounds):
            started = time.perf_counter()
            for txn in txns:
                score(txn, table, config, NOW)
            elapsed = time.perf_counter() - started
            results.setdefault(method, []).append(elapsed / len(txns) * 1e6)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument(
        "--seasonal",
        action="store_true",
        help='baselines with hour and weekday levels (docs/accuracy.md, "Weekday levels")',
    )
    args = parser.parse_args()
    for method, values in measure(args.rounds, args.transactions, args.seasonal).items():
        print(
            f"{method:10s} median {statistics.median(values):5.1f} µs per transaction "
            f"[{min(values):.1f}-{max(values):.1f}] over {len(values)} rounds"
        )


if __name__ == "__main__":
    main()
