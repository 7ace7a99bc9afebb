"""Log-spaced amount histograms: the mergeable form in which a scope's amounts are kept.

An amount x falls in bin floor(ln x / ln GAMMA): every bin spans the same ratio (2 %), so one
histogram serves amounts of 0.01 and of 10^13 alike with the same relative precision, and two
histograms (two days, two detectors) add bin by bin (the idea of DDSketch, Masson et al.,
VLDB 2019, without its collapsing: a scope's window rarely fills more than a few hundred
bins). The rollup trigger (ops/migrations/007) computes the same bin in SQL;
tests/integration/test_baselines.py checks the two agree.
"""

import math
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)


def bin_of(amount: Decimal | float) -> int:
    """The bin an amount falls in (the SQL trigger: floor(ln(amount::float8) / ln(1.02)))."""
    return bin_of_log(math.log(float(amount)))


def bin_of_log(log_amount: float) -> int:
    """`bin_of` from ln(amount) already taken (a replay's rollup needs both)."""
    return math.floor(log_amount / _LOG_GAMMA)


def bin_bounds(index: int) -> tuple[float, float]:
    """[low, high) amounts of a bin."""
    return math.exp(index * _LOG_GAMMA), math.exp((index + 1) * _LOG_GAMMA)


def histogram(amounts: Iterable[Decimal | float]) -> Counter[int]:
    return Counter(bin_of(amount) for amount in amounts)
