"""Amount distribution families that know their own truth: the oracle of the accuracy benchmark.

What it does: each family is a small frozen dataclass with `sample(rng, when) -> Decimal` (cents,
at least 0.01) and `survival(x, when) -> float`, the TRUE P(amount >= x) at that moment for the
amount as sampled (rounded to cents), so a benchmark can rank transactions by how rare they
really are, whatever method scores them. Families: log-normal, gamma, Lomax (a power-law tail),
Weibull, normal (truncated at > 0), a fixed price (with an optional rare second price), a
mixture of families (two modes), a seasonal wrapper whose level moves with the weekday and the
hour, and a few round amounts with many ties. Every family takes a `Drift` (a level that
inflates by a fixed share a day from some moment on) that `survival` accounts for.

Pure `random` + `math`: the only special function not in `math`, the regularized incomplete
gamma function, is `upper_gamma` below.
"""

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import ClassVar

CENT = 0.01
HALF_CENT = 0.005


def money(value: float) -> Decimal:
    """Cents, never below one: the smallest amount a card network accepts."""
    return max(Decimal(f"{value:.2f}"), Decimal("0.01"))


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    """A multiple between low and high, as likely in [1x, 2x) as in [10x, 20x)."""
    return math.exp(rng.uniform(math.log(low), math.log(high)))


@dataclass(frozen=True)
class Drift:
    """The level inflates by `per_day` (0.01 = 1 % a day, compounded) from `since` on."""

    per_day: float = 0.0
    since: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    def factor(self, when: datetime) -> float:
        if self.per_day == 0.0 or when <= self.since:
            return 1.0
        return float((1.0 + self.per_day) ** ((when - self.since) / timedelta(days=1)))


NO_DRIFT = Drift()


@dataclass(frozen=True)
class AmountFamily:
    """A distribution of amounts at unit level, times a level that may move with time.

    Subclasses give `_draw` (one raw amount at unit level) and `_sf` (P(raw >= x) at unit
    level); sampling rounds to cents, and `survival` answers for the rounded amount.
    """

    drift: Drift = field(default=NO_DRIFT, kw_only=True)
    name: ClassVar[str] = "family"

    def _draw(self, rng: random.Random) -> float:
        raise NotImplementedError

    def _sf(self, x: float) -> float:
        raise NotImplementedError

    def level(self, when: datetime) -> float:
        return self.drift.factor(when)

    def sample(self, rng: random.Random, when: datetime) -> Decimal:
        return money(self._draw(rng) * self.level(when))

    def survival(self, x: float | Decimal, when: datetime) -> float:
        """P(amount >= x): a raw amount r is sampled as x or more exactly when r >= x - ½ cent."""
        value = float(x)
        if value <= CENT:
            return 1.0
        return min(1.0, max(0.0, self._sf((value - HALF_CENT) / self.level(when))))

    def median(self, when: datetime) -> float:
        """The median amount at that moment (a fixed price: the price)."""
        return _unit_median(self) * self.level(when)


@cache
def _unit_median(family: AmountFamily) -> float:
    """Bisection on the survival function: every family here is a frozen, hashable value."""
    low, high = 0.0, 1.0
    while family._sf(high) > 0.5:
        low, high = high, high * 2
    for _ in range(80):
        middle = (low + high) / 2
        low, high = (middle, high) if family._sf(middle) > 0.5 else (low, middle)
    return high


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal, accurate far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class LogNormal(AmountFamily):
    median_amount: float
    sigma: float
    name: ClassVar[str] = "lognormal"

    def _draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median_amount), self.sigma)

    def _sf(self, x: float) -> float:
        if x <= 0:
            return 1.0
        return normal_sf((math.log(x) - math.log(self.median_amount)) / self.sigma)


@dataclass(frozen=True)
class Gamma(AmountFamily):
    shape: float
    scale: float
    name: ClassVar[str] = "gamma"

    def _draw(self, rng: random.Random) -> float:
        return rng.gammavariate(self.shape, self.scale)

    def _sf(self, x: float) -> float:
        return 1.0 if x <= 0 else upper_gamma(self.shape, x / self.scale)


@dataclass(frozen=True)
class Lomax(AmountFamily):
    """A power-law tail: P(raw >= x) = (1 + (x - floor) / scale) ** -alpha above `floor`."""

    scale: float
    alpha: float
    floor: float = 0.0
    name: ClassVar[str] = "pareto"

    def _draw(self, rng: random.Random) -> float:
        growth = float((1.0 - rng.random()) ** (-1.0 / self.alpha))
        return self.floor + self.scale * (growth - 1.0)

    def _sf(self, x: float) -> float:
        if x <= self.floor:
            return 1.0
        return float((1.0 + (x - self.floor) / self.scale) ** -self.alpha)


@dataclass(frozen=True)
class Weibull(AmountFamily):
    scale: float
    shape: float  # below 1: a tail heavier than exponential
    name: ClassVar[str] = "weibull"

    def _draw(self, rng: random.Random) -> float:
        return rng.weibullvariate(self.scale, self.shape)

    def _sf(self, x: float) -> float:
        return 1.0 if x <= 0 else math.exp(-((x / self.scale) ** self.shape))


@dataclass(frozen=True)
class TruncatedNormal(AmountFamily):
    """A normal amount conditioned on being > 0 (rejection: keep mean well above 0)."""

    mean: float
    sd: float
    name: ClassVar[str] = "normal"

    def _draw(self, rng: random.Random) -> float:
        while True:
            value = rng.gauss(self.mean, self.sd)
            if value > 0:
                return value

    def _sf(self, x: float) -> float:
        if x <= 0:
            return 1.0
        return normal_sf((x - self.mean) / self.sd) / normal_sf(-self.mean / self.sd)


@dataclass(frozen=True)
class FixedPrice(AmountFamily):
    """One price; optionally a rarer second price (an upgrade tier) on a share of charges."""

    price: float
    other_price: float | None = None
    other_share: float = 0.0
    name: ClassVar[str] = "fixed_price"

    def _draw(self, rng: random.Random) -> float:
        if self.other_price is not None and rng.random() < self.other_share:
            return self.other_price
        return self.price

    def _sf(self, x: float) -> float:
        prices = [(self.price, 1.0 - self._share), (self.other_price or 0.0, self._share)]
        return sum(weight for price, weight in prices if price >= x)

    @property
    def _share(self) -> float:
        return self.other_share if self.other_price is not None else 0.0


@dataclass(frozen=True)
class RoundAmounts(AmountFamily):
    """A few round amounts (gift cards, top-ups, cash): `values[i]` with chance `weights[i]`.
    Many exact ties and no tail between the values."""

    values: tuple[float, ...]
    weights: tuple[float, ...]
    name: ClassVar[str] = "round_amounts"

    def _draw(self, rng: random.Random) -> float:
        return rng.choices(self.values, self.weights)[0]

    def _sf(self, x: float) -> float:
        total = sum(self.weights)
        return sum(w for v, w in zip(self.values, self.weights, strict=True) if v >= x) / total


@dataclass(frozen=True)
class Mixture(AmountFamily):
    """Several modes in one merchant: component i with probability weights[i] (they sum to 1).
    The components' own drift is ignored: give the mixture its drift."""

    components: tuple[AmountFamily, ...]
    weights: tuple[float, ...]
    name: ClassVar[str] = "mixture"

    def _draw(self, rng: random.Random) -> float:
        return rng.choices(self.components, self.weights)[0]._draw(rng)

    def _sf(self, x: float) -> float:
        return sum(w * c._sf(x) for c, w in zip(self.components, self.weights, strict=True))


@dataclass(frozen=True)
class Seasonal(AmountFamily):
    """`base` whose level is multiplied by a weekday factor (Monday first) and an hour-of-day
    factor (UTC). The base's own drift is ignored: give the seasonal family its drift."""

    base: AmountFamily
    weekday: tuple[float, ...] = (0.9, 0.9, 0.95, 1.0, 1.1, 1.35, 1.2)
    hour: tuple[float, ...] = (0.7,) * 7 + (0.85,) * 4 + (1.0,) * 6 + (1.4,) * 5 + (0.9,) * 2
    name: ClassVar[str] = "seasonal"

    def _draw(self, rng: random.Random) -> float:
        return self.base._draw(rng)

    def _sf(self, x: float) -> float:
        return self.base._sf(x)

    def level(self, when: datetime) -> float:
        return self.drift.factor(when) * self.weekday[when.weekday()] * self.hour[when.hour]


def upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a), the regularized upper incomplete gamma function: the series
    for x < a + 1, else the continued fraction (modified Lentz), as in Numerical Recipes 6.2."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        return 1.0 - math.exp(log_prefix) * _lower_series(a, x)
    return math.exp(log_prefix) * _upper_fraction(a, x)


def _lower_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    denominator = a
    for _ in range(1000):
        denominator += 1
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * 1e-16:
            break
    return total


def _upper_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    result = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        result *= step
        if abs(step - 1.0) < 1e-16:
            break
    return result
