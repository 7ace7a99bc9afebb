"""Baseline maths from running sums, pure: the same code turns PostgreSQL's daily rollup and
a benchmark's in-memory stream into mean, standard deviation and their log-scale twins."""

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext

# Enough digits that sums of squared amounts (up to 10^28 each) never round.
_PRECISION = 80


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of amounts and of ln(amount)."""

    count: int = 0
    total: Decimal = Decimal(0)
    total_sq: Decimal = Decimal(0)
    log_total: float = 0.0
    log_total_sq: float = 0.0

    @classmethod
    def of(cls, amount: Decimal) -> "Moments":
        log_amount = math.log(amount)
        with localcontext(prec=_PRECISION):
            return cls(1, amount, amount * amount, log_amount, log_amount * log_amount)

    def __add__(self, other: "Moments") -> "Moments":
        with localcontext(prec=_PRECISION):
            return Moments(
                self.count + other.count,
                self.total + other.total,
                self.total_sq + other.total_sq,
                self.log_total + other.log_total,
                self.log_total_sq + other.log_total_sq,
            )

    def __sub__(self, other: "Moments") -> "Moments":
        with localcontext(prec=_PRECISION):
            return Moments(
                self.count - other.count,
                self.total - other.total,
                self.total_sq - other.total_sq,
                self.log_total - other.log_total,
                self.log_total_sq - other.log_total_sq,
            )

    @property
    def mean(self) -> float:
        return float(self.total / self.count) if self.count else 0.0

    @property
    def stddev(self) -> float:
        """Sample standard deviation, exact up to the final square root (decimal sums)."""
        if self.count < 2:
            return 0.0
        with localcontext(prec=_PRECISION):
            variance = (self.total_sq - self.total * self.total / self.count) / (self.count - 1)
        return math.sqrt(max(float(variance), 0.0))

    @property
    def log_mean(self) -> float:
        return self.log_total / self.count if self.count else 0.0

    @property
    def log_stddev(self) -> float:
        if self.count < 2:
            return 0.0
        variance = (self.log_total_sq - self.log_total**2 / self.count) / (self.count - 1)
        return math.sqrt(max(variance, 0.0))
