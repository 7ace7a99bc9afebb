"""Prometheus helpers every worker uses."""

from collections.abc import Iterable
from itertools import product

from prometheus_client import Counter


def preset(counter: Counter, **values: Iterable[str]) -> Counter:
    """Create the series of every combination of known label values at 0, so that
    `increase()` sees the first event (a series born with value 1 has no earlier sample to
    increase from)."""
    names = list(values)
    for combination in product(*values.values()):
        counter.labels(**dict(zip(names, combination, strict=True)))
    return counter
