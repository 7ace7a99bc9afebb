"""Hold-out amount families: shapes no default was ever chosen on (issue 12, round 4).

What it does: five more payment shapes, each with its exact survival function like those of
benchmarks/families.py, kept apart so that `benchmarks.tail_choice` never chooses on them
and they keep saying how the defaults do on data they were not tuned to:

- `BurrXII`: P(raw >= x) = (1 + (x / scale)^c)^-k, a power-law tail of index c·k with a
  body unlike the Lomax's (log-logistic when k = 1): marketplaces, home goods;
- `PriceList`: a shop with a handful of fixed SKU prices and baskets of 1 to `max_items`
  items (a truncated geometric count): the amount is a sum of prices, a discrete
  distribution with gaps, exact in cents;
- `WeekendShift`: a level 1.4-2.2x higher on Saturday and Sunday (and half of that on
  Friday) and none by hour: bars, leisure;
- `CardChecks`: card verifications of exactly 1.00 (5-25 % of the charges, never drifting)
  among log-normal purchases: a second mode far below the body;
- `CharmPrices`: a log-normal price rounded up to the next whole unit minus a cent (19.99,
  49.99): steps one unit wide, coarser than a 2 % bin below 50.

And one added with the weekday levels (docs/accuracy.md, "Weekday levels"), looked at only
once, at the end, as a second check of them:

- `MondayPeak`: a level 1.5-2.5x on Monday, a third of that rise on Tuesday, and a quiet
  Sunday (0.8x); none by hour: wholesale orders, restocking after the weekend.
"""

import random
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from functools import cache
from itertools import accumulate
from typing import ClassVar

from benchmarks.families import (
    CENT,
    HALF_CENT,
    AmountFamily,
    LogNormal,
    Seasonal,
)


@dataclass(frozen=True)
class BurrXII(AmountFamily):
    scale: float
    c: float
    k: float
    name: ClassVar[str] = "burr"

    def _draw(self, rng: random.Random) -> float:
        growth = (1.0 - rng.random()) ** (-1.0 / self.k) - 1.0
        return float(self.scale * growth ** (1.0 / self.c))

    def _sf(self, x: float) -> float:
        if x <= 0:
            return 1.0
        return float((1.0 + (x / self.scale) ** self.c) ** -self.k)


@dataclass(frozen=True)
class PriceList(AmountFamily):
    """A basket of n items (P(n) ∝ continue_share^(n - 1), 1 <= n <= max_items), each item
    one of `prices` with chance `weights[i]`: the amount is the sum of the basket's prices."""

    prices: tuple[float, ...]
    weights: tuple[float, ...]
    continue_share: float
    max_items: int = 8
    name: ClassVar[str] = "price_list"

    def _draw(self, rng: random.Random) -> float:
        items = rng.choices(range(1, self.max_items + 1), _basket_sizes(self))[0]
        cents = sum(round(p * 100) for p in rng.choices(self.prices, self.weights, k=items))
        return cents / 100

    def _sf(self, x: float) -> float:
        totals, at_or_above = _basket_totals(self)
        index = bisect_left(totals, x - 1e-9)
        return at_or_above[index] if index < len(totals) else 0.0


def _basket_sizes(family: PriceList) -> list[float]:
    return [family.continue_share ** (n - 1) for n in range(1, family.max_items + 1)]


@cache
def _basket_totals(family: PriceList) -> tuple[list[float], list[float]]:
    """Every basket total (ascending, in currency units) and P(total >= it), exact in cents:
    the distribution of a sum of n prices is the n-fold convolution of one item's."""
    total_weight = sum(family.weights)
    item: dict[int, float] = {}  # two SKUs may share a price
    for price, weight in zip(family.prices, family.weights, strict=True):
        item[round(price * 100)] = item.get(round(price * 100), 0.0) + weight / total_weight
    sizes = _basket_sizes(family)
    size_total = sum(sizes)
    totals: dict[int, float] = {}
    current = {0: 1.0}
    for size in sizes:
        current = _convolve(current, item)
        for cents, chance in current.items():
            totals[cents] = totals.get(cents, 0.0) + chance * size / size_total
    ordered = sorted(totals)
    tail = list(accumulate(totals[c] for c in reversed(ordered)))[::-1]
    return [c / 100 for c in ordered], [min(1.0, t) for t in tail]


def _convolve(left: dict[int, float], right: dict[int, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for a, pa in left.items():
        for b, pb in right.items():
            out[a + b] = out.get(a + b, 0.0) + pa * pb
    return out


@dataclass(frozen=True)
class WeekendShift(Seasonal):
    """`Seasonal` with a weekend level and a flat day: the weekday profile is all it moves."""

    name: ClassVar[str] = "weekend"


def weekend_shift(base: AmountFamily, weekend: float) -> WeekendShift:
    friday = 1 + (weekend - 1) / 2
    return WeekendShift(base, weekday=(1.0,) * 4 + (friday, weekend, weekend), hour=(1.0,) * 24)


@dataclass(frozen=True)
class MondayPeak(Seasonal):
    """`Seasonal` with one peak day early in the week and a quiet Sunday: a weekly profile
    of another shape than `weekend`'s (and than the seasonal family's)."""

    name: ClassVar[str] = "monday_peak"


def monday_peak(base: AmountFamily, monday: float) -> MondayPeak:
    tuesday = 1 + (monday - 1) / 3
    week = (monday, tuesday, 1.0, 1.0, 1.0, 1.0, 0.8)
    return MondayPeak(base, weekday=week, hour=(1.0,) * 24)


@dataclass(frozen=True)
class CardChecks(AmountFamily):
    """A verification charge of `check` on `check_share` of the charges, a purchase drawn
    from `purchases` (at the family's level) on the others. The check never inflates."""

    purchases: AmountFamily
    check_share: float
    check: Decimal = Decimal("1.00")
    name: ClassVar[str] = "card_checks"

    def _draw(self, rng: random.Random) -> float:
        return self.purchases._draw(rng)

    def _sf(self, x: float) -> float:
        """At unit level (what `median` reads): the check counted as if it inflated."""
        checks = self.check_share * (float(self.check) >= x)
        return checks + (1 - self.check_share) * self.purchases._sf(x)

    def sample(self, rng: random.Random, when: datetime) -> Decimal:
        if rng.random() < self.check_share:
            return self.check
        return super().sample(rng, when)

    def survival(self, x: float | Decimal, when: datetime) -> float:
        value = float(x)
        if value <= CENT:
            return 1.0
        checks = self.check_share * (float(self.check) >= value)
        purchase = self.purchases._sf((value - HALF_CENT) / self.level(when))
        return min(1.0, checks + (1 - self.check_share) * purchase)


@dataclass(frozen=True)
class CharmPrices(AmountFamily):
    """`base` at the family's level, rounded up to a whole unit, minus one cent."""

    base: LogNormal
    name: ClassVar[str] = "charm_prices"

    def _draw(self, rng: random.Random) -> float:
        return self.base._draw(rng)

    def _sf(self, x: float) -> float:
        return self.base._sf(x)

    def sample(self, rng: random.Random, when: datetime) -> Decimal:
        raw = Decimal(repr(self._draw(rng) * self.level(when)))
        return raw.to_integral_value(rounding=ROUND_CEILING) - Decimal("0.01")

    def survival(self, x: float | Decimal, when: datetime) -> float:
        """ceil(y) - 0.01 >= x exactly when ceil(y) >= m = ceil(x + 0.01), i.e. y > m - 1."""
        value = Decimal(str(x)) + Decimal("0.01")
        whole = value.to_integral_value(rounding=ROUND_CEILING)
        if whole <= 1:
            return 1.0
        return self.base._sf(float(whole - 1) / self.level(when))
