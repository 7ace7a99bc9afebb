"""An independent ("blind") labelled transaction stream, built only from the outside
evaluation's one-paragraph description (docs/accuracy-blind.md), to see how the detector
generalises beyond the synthetic streams it was tuned on.

    python -m benchmarks.blind_stream --seed 1 --out /tmp/blind/s1.jsonl
    python -m benchmarks.blind_stream --explain /tmp/blind/s1_alerts.jsonl /tmp/blind/s1.jsonl

Each row: id, transaction_date (UTC, ISO 8601), amount (a string, cents), currency (USD),
category, merchant; the label `is_fraud`; the oracle `true_p` = P(normal amount >= this
amount) under the merchant's true distribution at that moment, computed exactly (closed
forms and continued fractions, no sampling); and for the breakdown `shape`, `anomaly_kind`
(spike, jump or null), `factor` and `typical` (the merchant's mean at that moment).

Deliberately self-contained: nothing here comes from the other benchmark generators.
"""

import argparse
import itertools
import json
import math
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

DAYS = 45
TRANSACTIONS = 135_000
ANOMALY_SHARE = 0.004
WARMUP_DAYS = 38.0
WINDOW_DAYS = 30  # the backtest's default baseline window (benchmarks.replay), for --explain
TINY = 1e-12  # true_p beyond a bounded support (a fixed price, a full tank): "impossible"
# Spike sizes (times the merchant's mean at that moment): (share, low, high), log-uniform.
SPIKE_MIX = ((0.2, 3.0, 5.0), (0.4, 5.0, 10.0), (0.4, 10.0, 20.0))
JUMP_RANGE = (1.2, 3.0)  # the scope's highest fixed price times this (log-uniform)
Rng = np.random.Generator


# --- exact tail probabilities ---------------------------------------------------------------


def gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) = P(Gamma(a, 1) >= x) (series below
    a + 1, Lentz's continued fraction above, as in Numerical Recipes)."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denominator = a
        for _ in range(10_000):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    return math.exp(log_front) * _continued_fraction(
        lambda i: -i * (i - a), lambda i: x + 1 - a + 2 * i
    )


def beta_sf(a: float, b: float, x: float) -> float:
    """1 - I_x(a, b) = P(Beta(a, b) >= x), computed on the side where it keeps precision."""
    if x <= 0:
        return 1.0
    if x >= 1:
        return 0.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return 1.0 - math.exp(log_front) * _beta_fraction(a, b, x) / a
    return math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    def numerator(step: int) -> float:
        m = step // 2
        if step % 2 == 0:
            return m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        return -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))

    # 1 / (1 + d1 / (1 + d2 / (1 + ...))): d_1 is the odd term with m = 0.
    return 1.0 / (1.0 + numerator(1) * _continued_fraction(lambda i: numerator(i + 1), 1.0))


def _continued_fraction(
    numerator: Callable[[int], float], denominator: Callable[[int], float] | float
) -> float:
    """1 / (b0 + a1 / (b1 + a2 / (b2 + ...))) by the modified Lentz method."""

    def b(i: int) -> float:
        return denominator(i) if callable(denominator) else denominator

    tiny = 1e-300
    c, d = 1.0 / tiny, 1.0 / (b(0) or tiny)
    h = d
    for i in range(1, 10_000):
        an, bn = numerator(i), b(i)
        d = bn + an * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = bn + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


# --- amount shapes (at unit price level; Level scales them) ---------------------------------


@dataclass(frozen=True)
class Continuous:
    """A continuous amount law: `kind` names the family, `params` its parameters."""

    kind: str  # power_law | gamma | multimodal | bounded | metered
    params: tuple[float, ...]
    fixed_price: bool = False

    @property
    def shape(self) -> str:
        return self.kind

    def sample(self, rng: Rng, n: int) -> np.ndarray:
        p = self.params
        if self.kind == "power_law":  # Lomax: lo + sigma * Pareto-II(alpha)
            return p[0] + p[1] * rng.pareto(p[2], n)
        if self.kind == "gamma":
            return rng.gamma(p[0], p[1], n)
        if self.kind == "multimodal":  # (w, k, theta) triples
            triples = np.array(p).reshape(-1, 3)
            mode = rng.choice(len(triples), size=n, p=triples[:, 0] / triples[:, 0].sum())
            return np.asarray(rng.gamma(triples[mode, 1], triples[mode, 2]), dtype=float)
        if self.kind == "bounded":  # Beta(a, b) of a capacity (a fuel tank, in gallons)
            return p[2] * rng.beta(p[0], p[1], n)
        if self.kind == "metered":  # base + rate * Weibull(k, scale) (miles)
            return p[0] + p[1] * p[3] * rng.weibull(p[2], n)
        raise ValueError(self.kind)

    def sf(self, x: float) -> float:
        """P(X >= x) at unit level."""
        p = self.params
        if self.kind == "power_law":
            return 1.0 if x <= p[0] else (1.0 + (x - p[0]) / p[1]) ** -p[2]
        if self.kind == "gamma":
            return gamma_q(p[0], x / p[1])
        if self.kind == "multimodal":
            triples = [p[i : i + 3] for i in range(0, len(p), 3)]
            total = sum(t[0] for t in triples)
            return sum(w * gamma_q(k, x / theta) for w, k, theta in triples) / total
        if self.kind == "bounded":
            return beta_sf(p[0], p[1], x / p[2])
        if self.kind == "metered":
            return 1.0 if x <= p[0] else math.exp(-(((x - p[0]) / (p[1] * p[3])) ** p[2]))
        raise ValueError(self.kind)

    def survival(self, amount: float, level: float) -> float:
        return self.sf(amount / level)

    def mean(self) -> float:
        """E[X] at unit level (the "typical amount" spikes are sized against)."""
        p = self.params
        if self.kind == "power_law":
            return p[0] + p[1] / (p[2] - 1)  # alpha > 1 throughout
        if self.kind == "gamma":
            return p[0] * p[1]
        if self.kind == "multimodal":
            triples = [p[i : i + 3] for i in range(0, len(p), 3)]
            return sum(w * k * theta for w, k, theta in triples) / sum(t[0] for t in triples)
        if self.kind == "bounded":
            return p[2] * p[0] / (p[0] + p[1])
        if self.kind == "metered":
            return p[0] + p[1] * p[3] * math.gamma(1 + 1 / p[2])
        raise ValueError(self.kind)

    def typical(self, level: float) -> float:
        return self.mean() * level

    def top(self, level: float) -> float:
        return math.inf


@dataclass(frozen=True)
class Discrete:
    """A few exact prices with weights: subscriptions and tolls (fixed_price: anomalies are
    jumps), prepaid top-ups and parking (round amounts: anomalies are spikes)."""

    prices: tuple[float, ...]
    weights: tuple[float, ...]
    fixed_price: bool

    @property
    def shape(self) -> str:
        return "fixed" if self.fixed_price else "round"

    def sample(self, rng: Rng, n: int) -> np.ndarray:
        w = np.array(self.weights)
        return np.array(self.prices)[rng.choice(len(self.prices), size=n, p=w / w.sum())]

    def survival(self, amount: float, level: float) -> float:
        """Sum of the weights of the prices (at this level, in cents) at or above amount."""
        cents = round(amount * 100)
        total = sum(self.weights)
        return (
            sum(
                w
                for p, w in zip(self.prices, self.weights, strict=True)
                if round(p * level * 100) >= cents
            )
            / total
        )

    def typical(self, level: float) -> float:
        """The mean price at this level."""
        mean = sum(p * w for p, w in zip(self.prices, self.weights, strict=True))
        return round(mean / sum(self.weights) * level, 2)

    def top(self, level: float) -> float:
        """The highest normal price at this level: a jump goes above it."""
        return round(max(self.prices) * level, 2)


Shape = Continuous | Discrete


@dataclass(frozen=True)
class Level:
    """The merchant's price level at a moment: a base (fuel's price per gallon), slow
    inflation, weekend and time-of-day seasonality, congestion pricing, one price change."""

    base: float = 1.0
    inflation: float = 0.0  # per year
    weekend: float = 0.0  # relative change on Saturday and Sunday
    hour_amp: float = 0.0  # relative amplitude of a cosine over the day
    hour_peak: float = 19.0
    peak_hours: frozenset[int] = frozenset()  # weekday hours at the congestion price
    peak_factor: float = 1.0
    step_day: float | None = None  # a price change from this day on (normal, not labelled)
    step_factor: float = 1.0

    def at(self, day: float, when: datetime) -> float:
        level = float(self.base * (1.0 + self.inflation) ** (day / 365.0))
        if when.weekday() >= 5:
            level *= 1.0 + self.weekend
        hour = when.hour + when.minute / 60
        level *= 1.0 + self.hour_amp * math.cos(2 * math.pi * (hour - self.hour_peak) / 24)
        if when.weekday() < 5 and when.hour in self.peak_hours:
            level *= self.peak_factor
        if self.step_day is not None and day >= self.step_day:
            level *= self.step_factor
        return level


@dataclass(frozen=True)
class Merchant:
    name: str
    category: str
    shape: Shape
    level: Level
    rate: float  # relative traffic weight (per day)
    start_day: int = 0
    weekday_volume: tuple[float, ...] = (1.0,) * 7
    hour_volume: tuple[float, ...] = (1.0,) * 24


# --- the catalogue ------------------------------------------------------------------------


def _hours(*bumps: tuple[float, float, float], floor: float = 0.05) -> tuple[float, ...]:
    """An hour-of-day volume profile: a floor plus gaussian bumps (centre, width, height)."""
    values = [
        floor
        + sum(h * math.exp(-(((hour - c + 12) % 24 - 12) ** 2) / (2 * w * w)) for c, w, h in bumps)
        for hour in range(24)
    ]
    mean = sum(values) / 24
    return tuple(v / mean for v in values)


SHOP_HOURS = _hours((12.5, 2.5, 1.0), (17.5, 2.0, 1.2))
MEAL_HOURS = _hours((12.5, 1.0, 1.5), (19.5, 1.5, 1.8), (8.0, 1.0, 0.4))
COMMUTE_HOURS = _hours((8.0, 1.2, 1.5), (17.5, 1.5, 1.6), floor=0.15)
ONLINE_HOURS = _hours((13.0, 3.0, 0.8), (21.0, 2.0, 1.2), floor=0.2)
BILLING_HOURS = _hours((5.0, 1.0, 3.0), floor=0.2)  # renewals run in a nightly batch
NIGHT_HOURS = _hours((8.0, 1.2, 1.0), (18.0, 2.0, 1.2), (23.5, 1.5, 1.0), floor=0.2)


def _lu(rng: Rng, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _gamma_mean(k: float, mean: float) -> tuple[float, float]:
    return k, mean / k


def _grocery(rng: Rng, i: int) -> Shape:
    mean = (32.0, 58.0, 105.0)[i % 3] * _lu(rng, 0.85, 1.15)  # discount, regular, premium
    return Continuous("gamma", _gamma_mean(_lu(rng, 1.8, 3.2), mean))


def _restaurant(rng: Rng, i: int) -> Shape:
    kind = ("fast", "casual", "fast", "casual", "fine")[i % 5]
    if kind == "fast":
        return Continuous("gamma", _gamma_mean(_lu(rng, 3, 5), _lu(rng, 9, 15)))
    if kind == "fine":
        return Continuous("gamma", _gamma_mean(_lu(rng, 5, 8), _lu(rng, 110, 180)))
    lunch, dinner = _lu(rng, 16, 24), _lu(rng, 45, 70)
    return Continuous(
        "multimodal",
        (
            0.55,
            *_gamma_mean(6, lunch),
            0.4,
            *_gamma_mean(5, dinner),
            0.05,
            *_gamma_mean(8, 4 * dinner),
        ),
    )


def _electronics(rng: Rng, i: int) -> Shape:
    sigma = ((25, 40), (120, 250), (120, 250), (400, 600))[i % 4]
    return Continuous("power_law", (_lu(rng, 4, 9), _lu(rng, *sigma), _lu(rng, 1.7, 2.6)))


def _travel(rng: Rng, i: int) -> Shape:
    kind = ("air", "hotel", "car", "air", "hotel")[i % 5]
    if kind == "air":
        return Continuous("power_law", (_lu(rng, 39, 79), _lu(rng, 150, 300), _lu(rng, 2.2, 3.0)))
    if kind == "car":
        return Continuous("gamma", _gamma_mean(3, _lu(rng, 150, 280)))
    night = _lu(rng, 120, 220)
    return Continuous(
        "multimodal",
        (
            0.6,
            *_gamma_mean(12, night),
            0.3,
            *_gamma_mean(8, 2.5 * night),
            0.1,
            *_gamma_mean(6, 6 * night),
        ),
    )


def _fuel(rng: Rng, i: int) -> Shape:
    tank = _lu(rng, 28, 34) if i % 4 == 3 else _lu(rng, 13, 20)  # every fourth: trucks too
    return Continuous("bounded", (_lu(rng, 2.5, 4.0), _lu(rng, 1.5, 2.5), tank))


PLANS = (4.99, 6.99, 7.99, 9.99, 11.99, 12.99, 14.99, 15.49, 17.99, 19.99, 22.99, 29.99, 49.99)


def _subscription(rng: Rng, i: int) -> Shape:
    count = (1, 2, 1, 3)[i % 4]
    prices = tuple(sorted(float(p) for p in rng.choice(PLANS, size=count, replace=False)))
    weights = tuple(float(w) for w in rng.dirichlet([3.0] * count))
    return Discrete(prices, weights, fixed_price=True)


def _toll(rng: Rng, i: int) -> Shape:
    car = round(_lu(rng, 1.5, 6.0) * 20) / 20  # to the nickel
    prices = (car, round(car * 2.5, 2), round(car * 4, 2))
    return Discrete(prices, (0.82, 0.13, 0.05), fixed_price=True)


def _pharmacy(rng: Rng, i: int) -> Shape:
    return Continuous(
        "multimodal",
        (
            0.35,
            *_gamma_mean(30, _lu(rng, 8, 14)),  # co-pays
            0.5,
            *_gamma_mean(2.5, _lu(rng, 18, 30)),  # over the counter
            0.15,
            *_gamma_mean(3, _lu(rng, 90, 160)),  # specialty
        ),
    )


def _rideshare(rng: Rng, i: int) -> Shape:
    return Continuous(
        "metered", (_lu(rng, 2.5, 5), _lu(rng, 1.4, 2.4), _lu(rng, 1.1, 1.5), _lu(rng, 4, 8))
    )


def _prepaid(rng: Rng, i: int) -> Shape:
    values = (10.0, 20.0, 25.0, 50.0, 100.0)
    return Discrete(values, tuple(float(w) for w in rng.dirichlet([2.0] * 5)), fixed_price=False)


def _apparel(rng: Rng, i: int) -> Shape:
    small, big = _lu(rng, 25, 45), _lu(rng, 100, 180)
    return Continuous("multimodal", (0.7, *_gamma_mean(3, small), 0.3, *_gamma_mean(4, big)))


def _parking(rng: Rng, i: int) -> Shape:
    rate = round(_lu(rng, 2.0, 4.0) * 4) / 4
    hours = range(1, 9)
    return Discrete(tuple(rate * h for h in hours), tuple(0.6**h for h in hours), fixed_price=False)


@dataclass(frozen=True)
class Category:
    name: str
    count: int
    share: float  # of all traffic
    make: Callable[[Rng, int], Shape]
    level: Callable[[Rng], Level]
    weekdays: tuple[float, ...]
    hours: tuple[float, ...]
    brands: tuple[str, ...] = field(default=())


def _continuous_level(
    inflation: float, weekend: float, amp: float, peak: float
) -> Callable[[Rng], Level]:
    return lambda rng: Level(inflation=inflation, weekend=weekend, hour_amp=amp, hour_peak=peak)


def _fuel_level(rng: Rng) -> Level:
    return Level(base=_lu(rng, 3.1, 4.3), inflation=0.25)  # ~3 % over the 45 days


def _flat_level(rng: Rng) -> Level:
    return Level()


# Each: name, merchants, share of traffic, amount shape, price level, weekday and hour
# volume profiles, brand names.
CATEGORIES = (
    Category(
        "grocery",
        10,
        0.18,
        _grocery,
        _continuous_level(0.04, 0.2, 0.1, 18),
        (1, 1, 1, 1, 1.1, 1.35, 1.25),
        SHOP_HOURS,
        ("FreshMart", "ValueGrocer", "GreenBasket", "CornerFoods", "MarketHall"),
    ),
    Category(
        "restaurants",
        14,
        0.20,
        _restaurant,
        _continuous_level(0.05, 0.1, 0.15, 20),
        (0.9, 0.9, 0.95, 1, 1.25, 1.35, 1.1),
        MEAL_HOURS,
        ("BurgerBarn", "Trattoria Sole", "TacoWay", "Noodle House", "Le Jardin"),
    ),
    Category(
        "electronics",
        6,
        0.05,
        _electronics,
        _continuous_level(0.02, 0.1, 0.0, 0),
        (1, 1, 1, 1, 1.1, 1.3, 1.2),
        ONLINE_HOURS,
        ("CableCorner", "TechDepot", "GadgetHub", "ProAV Studio"),
    ),
    Category(
        "travel",
        8,
        0.04,
        _travel,
        _continuous_level(0.06, 0.0, 0.0, 0),
        (1.1, 1, 1, 1, 1.1, 0.9, 1.0),
        ONLINE_HOURS,
        ("SkyJet Air", "Harbor Hotels", "RoadRent", "BlueWing Air", "Summit Inns"),
    ),
    Category(
        "fuel",
        8,
        0.10,
        _fuel,
        _fuel_level,
        (1.05, 1, 1, 1, 1.15, 1.1, 0.85),
        COMMUTE_HOURS,
        ("PetroStop", "FuelWay", "GasGo", "TruckPlaza"),
    ),
    Category(
        "subscriptions",
        12,
        0.10,
        _subscription,
        _flat_level,
        (1,) * 7,
        BILLING_HOURS,
        ("StreamFlix", "CloudBox", "MusicNow", "NewsDaily"),
    ),
    Category(
        "tolls",
        6,
        0.08,
        _toll,
        _flat_level,
        (1.1, 1.1, 1.1, 1.1, 1.1, 0.7, 0.6),
        COMMUTE_HOURS,
        ("Bay Bridge Toll", "Turnpike", "Express Lanes"),
    ),
    Category(
        "pharmacy",
        6,
        0.06,
        _pharmacy,
        _continuous_level(0.03, 0.0, 0.0, 0),
        (1, 1, 1, 1, 1, 0.8, 0.6),
        SHOP_HOURS,
        ("HealthRx", "CarePlus Pharmacy", "MedCorner"),
    ),
    Category(
        "rideshare",
        5,
        0.06,
        _rideshare,
        _continuous_level(0.04, 0.0, 0.2, 23.5),
        (1, 1, 1, 1, 1.2, 1.3, 1),
        NIGHT_HOURS,
        ("RideNow", "CityCab", "ZipRide"),
    ),
    Category(
        "prepaid",
        4,
        0.03,
        _prepaid,
        _flat_level,
        (1,) * 7,
        SHOP_HOURS,
        ("PhoneTopUp", "GiftCardMall"),
    ),
    Category(
        "apparel",
        6,
        0.06,
        _apparel,
        _continuous_level(0.03, 0.15, 0.0, 0),
        (0.9, 0.9, 0.9, 1, 1.1, 1.5, 1.2),
        SHOP_HOURS,
        ("UrbanThreads", "StyleLoft", "DenimCo"),
    ),
    Category(
        "parking",
        3,
        0.04,
        _parking,
        _flat_level,
        (1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.5),
        COMMUTE_HOURS,
        ("CityPark", "GarageOne"),
    ),
)
# Merchants that open late (days 28-43) with little traffic: few samples when evaluated.
LATE = (
    "restaurants",
    "electronics",
    "grocery",
    "subscriptions",
    "travel",
    "apparel",
    "pharmacy",
    "fuel",
    "tolls",
    "rideshare",
)
SUBSCRIPTION_PRICE_CHANGE = (30.0, 1.10)  # the second subscription raises prices 10 % on day 30


def catalogue(rng: Rng) -> list[Merchant]:
    merchants: list[Merchant] = []
    by_name = {c.name: c for c in CATEGORIES}
    for cat in CATEGORIES:
        popularity = rng.lognormal(0.0, 1.0, cat.count)
        popularity = popularity / popularity.sum() * cat.share
        for i in range(cat.count):
            level = cat.level(rng)
            if cat.name == "tolls" and i in (1, 4):  # congestion pricing on two roads
                level = Level(peak_hours=frozenset({7, 8, 16, 17, 18}), peak_factor=1.5)
            if cat.name == "subscriptions" and i == 1:
                level = Level(
                    step_day=SUBSCRIPTION_PRICE_CHANGE[0], step_factor=SUBSCRIPTION_PRICE_CHANGE[1]
                )
            merchants.append(_merchant(cat, i, cat.make(rng, i), level, float(popularity[i]), 0))
    for j, name in enumerate(LATE):
        cat = by_name[name]
        start = int(rng.integers(28, 44))
        rate = _lu(rng, 0.3, 4.0) / (TRANSACTIONS / DAYS)  # 0.3 to 4 a day
        merchants.append(
            _merchant(
                cat,
                cat.count + j,
                cat.make(rng, int(rng.integers(0, 5))),
                cat.level(rng),
                rate,
                start,
            )
        )
    return merchants


def _merchant(
    cat: Category, i: int, shape: Shape, level: Level, rate: float, start: int
) -> Merchant:
    brand = cat.brands[i % len(cat.brands)] if cat.brands else cat.name
    return Merchant(
        name=f"{brand} #{i + 1}",
        category=cat.name,
        shape=shape,
        level=level,
        rate=rate,
        start_day=start,
        weekday_volume=tuple(v / (sum(cat.weekdays) / 7) for v in cat.weekdays),
        hour_volume=cat.hours,
    )


# --- the stream ---------------------------------------------------------------------------


@dataclass
class Row:
    when: datetime
    day: float
    merchant: Merchant
    amount: float
    level: float
    id: str
    is_fraud: bool = False
    kind: str | None = None
    factor: float | None = None

    def record(self) -> dict[str, Any]:
        shape = self.merchant.shape
        p = max(TINY, min(1.0, shape.survival(self.amount, self.level)))
        return {
            "id": self.id,
            "transaction_date": self.when.isoformat(timespec="seconds"),
            "amount": f"{self.amount:.2f}",
            "currency": "USD",
            "category": self.merchant.category,
            "merchant": self.merchant.name,
            "is_fraud": self.is_fraud,
            "true_p": p,
            "shape": shape.shape,
            "anomaly_kind": self.kind,
            "factor": None if self.factor is None else round(self.factor, 3),
            "typical": round(shape.typical(self.level), 2),
        }


def generate(seed: int, transactions: int = TRANSACTIONS, end: date | None = None) -> list[Row]:
    """The stream, deterministic per (seed, end): `end` is its last day (default yesterday)."""
    rng = np.random.default_rng(seed)
    last = end or (datetime.now(UTC).date() - timedelta(days=1))
    start = datetime(last.year, last.month, last.day, tzinfo=UTC) - timedelta(days=DAYS - 1)
    merchants = catalogue(rng)
    counts = _allocate(rng, merchants, start, transactions)
    rows: list[Row] = []
    for m, merchant in enumerate(merchants):
        rows += _merchant_rows(rng, merchant, start, counts[m])
    rows.sort(key=lambda row: (row.when, row.id))
    _inject(rng, rows, round(transactions * ANOMALY_SHARE))
    return rows


def _allocate(rng: Rng, merchants: Sequence[Merchant], start: datetime, n: int) -> np.ndarray:
    """Exactly n transactions over (merchant, day, hour) cells, by seasonal intensity."""
    intensity = np.zeros((len(merchants), DAYS, 24))
    for m, merchant in enumerate(merchants):
        for d in range(merchant.start_day, DAYS):
            weekday = (start + timedelta(days=d)).weekday()
            intensity[m, d] = (
                merchant.rate * merchant.weekday_volume[weekday] * np.array(merchant.hour_volume)
            )
    flat = intensity.ravel()
    return rng.multinomial(n, flat / flat.sum()).reshape(intensity.shape)


def _merchant_rows(rng: Rng, merchant: Merchant, start: datetime, counts: np.ndarray) -> list[Row]:
    cells = [(d, h) for d in range(DAYS) for h in range(24) for _ in range(int(counts[d, h]))]
    if not cells:
        return []
    seconds = rng.uniform(0, 3600, len(cells))
    base = merchant.shape.sample(rng, len(cells))
    ids = rng.bytes(16 * len(cells))
    rows = []
    for i, (d, h) in enumerate(cells):
        when = start + timedelta(days=d, hours=h, seconds=int(seconds[i]))
        day = (when - start).total_seconds() / 86400
        level = merchant.level.at(day, when)
        amount = max(0.01, round(float(base[i]) * level, 2))
        rid = str(uuid.UUID(bytes=ids[16 * i : 16 * i + 16], version=4))
        rows.append(Row(when, day, merchant, amount, level, rid))
    return rows


def _inject(rng: Rng, rows: list[Row], count: int) -> None:
    """Anomalies on `count` rows drawn uniformly: in a fixed-price scope a jump above its
    highest price at that moment; elsewhere a spike, a multiple of its mean at that moment."""
    shares = np.array([s for s, _, _ in SPIKE_MIX])
    for index in sorted(rng.choice(len(rows), size=count, replace=False)):
        row = rows[index]
        shape = row.merchant.shape
        if shape.fixed_price:
            row.kind, row.factor = "jump", _log_uniform(rng, *JUMP_RANGE)
            row.amount = round(shape.top(row.level) * row.factor, 2)
        else:
            _, low, high = SPIKE_MIX[int(rng.choice(len(SPIKE_MIX), p=shares / shares.sum()))]
            row.kind, row.factor = "spike", _log_uniform(rng, low, high)
            row.amount = round(shape.typical(row.level) * row.factor, 2)
        row.is_fraud = True


def _log_uniform(rng: Rng, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def write(rows: Iterable[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row.record()) + "\n")


# --- where the detector's high+ false alerts and misses come from -------------------------

HIGH_PLUS = frozenset({"high", "critical"})
CLEAR = 1e-4  # true_p at or below this: the amount is clearly outside the merchant's range


def _bucket(value: float, edges: Sequence[float], unit: str = "") -> str:
    for low, high in itertools.pairwise(edges):
        if low <= value < high:
            return f"{low:g}-{high:g}{unit}"
    return f">={edges[-1]:g}{unit}" if value >= edges[-1] else f"<{edges[0]:g}{unit}"


SAMPLE_EDGES = (0, 20, 100, 500, 2000)
RATIO_EDGES = (0, 1, 2, 3, 5, 10, 20)
P_EDGES = (0, 1e-9, 1e-6, 1e-4, 1e-2, 1.01)


def load_stream(path: Path, warmup_days: float = WARMUP_DAYS) -> list[dict[str, Any]]:
    """The stream's rows in time order, each with `seen` (the merchant's rows before it),
    `window` (those of the last WINDOW_DAYS, the replay's default baseline window) and
    `counted` (inside the evaluated days: from the first row + warmup_days, as the
    backtest counts)."""
    rows = [json.loads(line) for line in path.open() if line.strip()]
    for row in rows:
        row["when"] = datetime.fromisoformat(row["transaction_date"])
    rows.sort(key=lambda row: row["when"])
    counted_from = rows[0]["when"] + timedelta(days=warmup_days)
    seen: Counter[str] = Counter()
    recent: dict[str, deque[datetime]] = defaultdict(deque)
    for row in rows:
        window = recent[row["merchant"]]
        while window and window[0] < row["when"] - timedelta(days=WINDOW_DAYS):
            window.popleft()
        row["seen"], row["window"] = seen[row["merchant"]], len(window)
        row["counted"] = row["when"] >= counted_from
        seen[row["merchant"]] += 1
        window.append(row["when"])
    return rows


def explain(
    pairs: Sequence[tuple[Path, Path]],
    warmup_days: float = WARMUP_DAYS,
    exclude: Sequence[str] = (),
) -> str:
    """Markdown: per method, high+ false alerts and missed anomalies by shape, samples
    seen, amount against typical, true_p, and the merchants that account for most. Several
    (alerts, stream) pairs (seeds) are pooled; merchants are then named stream:merchant.
    `exclude`: merchants (as named in the streams) left out of every figure."""
    rows: list[dict[str, Any]] = []
    verdicts: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for alerts, stream in pairs:
        for row in load_stream(stream, warmup_days):
            if row["counted"] and row["merchant"] not in exclude:
                prefix = f"{stream.stem}:" if len(pairs) > 1 else ""
                rows.append(row | {"merchant": prefix + row["merchant"]})
        for line in alerts.open():
            alert = json.loads(line)
            verdicts[alert["method"]][alert["transaction"]["id"]] = alert["verdict"]
    names = ", ".join(f"{alerts} on {stream}" for alerts, stream in pairs)
    out = [f"# Breakdown of {names} ({len(rows):,} evaluated rows)"]
    if exclude:
        out.append(f"\nLeft out: {', '.join(exclude)}.")
    for method, said in verdicts.items():
        ids = {key for key, verdict in said.items() if verdict["severity"] in HIGH_PLUS}
        false = [row for row in rows if row["id"] in ids and not row["is_fraud"]]
        missed = [row for row in rows if row["is_fraud"] and row["id"] not in ids]
        out += [f"\n## {method}", "", *_by_shape(rows, ids)]
        out += ["", f"### {len(false)} high+ false alerts"]
        out += [*_spread(false, said), *_top(false, said)]
        out += ["", f"### {len(missed)} missed anomalies"]
        out += [*_spread(missed, said), *_top(missed, said)]
        out += _clear_misses([row for row in missed if row["true_p"] <= CLEAR], said)
    return "\n".join(out)


def _said(verdict: dict[str, Any] | None) -> str:
    """What the detector said: its severity and rule, or none (no alert at all)."""
    return "none" if verdict is None else f"{verdict['severity']} ({verdict['rule']})"


def _ratio(row: dict[str, Any]) -> float:
    return float(row["amount"]) / row["typical"] if row["typical"] else math.inf


def _by_shape(rows: Sequence[dict[str, Any]], ids: set[str]) -> list[str]:
    lines = [
        "| shape | normal rows | high+ false | per 10k | anomalies | caught | recall | "
        f"clear (true_p <= {CLEAR:g}) | clear caught |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    shapes = sorted({row["shape"] for row in rows})
    for shape in [*shapes, "all"]:
        mine = [row for row in rows if shape in ("all", row["shape"])]
        normal = [row for row in mine if not row["is_fraud"]]
        bad = [row for row in mine if row["is_fraud"]]
        false = sum(row["id"] in ids for row in normal)
        caught = sum(row["id"] in ids for row in bad)
        clear = [row for row in bad if row["true_p"] <= CLEAR]
        lines.append(
            f"| {shape} | {len(normal):,} | {false} | {1e4 * false / max(1, len(normal)):.1f} | "
            f"{len(bad)} | {caught} | {caught / len(bad) if bad else math.nan:.2f} | "
            f"{len(clear)} | {sum(row['id'] in ids for row in clear)} |"
        )
    return lines


def _spread(rows: Sequence[dict[str, Any]], said: dict[str, dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    views: dict[str, Callable[[dict[str, Any]], str]] = {
        "detector said": lambda row: _said(said.get(row["id"])),
        "shape": lambda row: str(row["shape"]),
        "kind": lambda row: str(row["anomaly_kind"] or "normal"),
        "merchant's rows seen before": lambda row: _bucket(row["seen"], SAMPLE_EDGES),
        "amount / typical": lambda row: _bucket(_ratio(row), RATIO_EDGES, "x"),
        "true_p": lambda row: _bucket(row["true_p"], P_EDGES),
    }
    lines = []
    for name, key in views.items():
        counts = Counter(key(row) for row in rows)
        lines.append(f"- by {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return lines


def _top(
    rows: Sequence[dict[str, Any]], said: dict[str, dict[str, Any]], limit: int = 12
) -> list[str]:
    if not rows:
        return []
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["merchant"]].append(row)
    lines = [
        "",
        "| merchant | category | shape | count | rows seen (min-max) | amount / typical "
        "(median) | true_p (min) | detector's tail p (median) | detector said (most) |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, group in sorted(groups.items(), key=lambda item: -len(item[1]))[:limit]:
        ratios = sorted(_ratio(row) for row in group)
        seen = [row["seen"] for row in group]
        verdicts = [said.get(row["id"]) for row in group]
        estimated = sorted(v["tail_probability"] for v in verdicts if v and v["tail_probability"])
        typical_p = f"{estimated[len(estimated) // 2]:.2g}" if estimated else "-"
        most = Counter(_said(v) for v in verdicts).most_common(1)[0][0]
        lines.append(
            f"| {name} | {group[0]['category']} | {group[0]['shape']} | {len(group)} | "
            f"{min(seen)}-{max(seen)} | {ratios[len(ratios) // 2]:.2f} | "
            f"{min(row['true_p'] for row in group):.2g} | {typical_p} | {most} |"
        )
    return lines


def _clear_misses(rows: Sequence[dict[str, Any]], said: dict[str, dict[str, Any]]) -> list[str]:
    """Every missed anomaly the true distribution calls clear: what the detector made of it."""
    if not rows:
        return []
    lines = [
        "",
        f"{len(rows)} of them clear (true_p <= {CLEAR:g}):",
        "",
        "| merchant | shape | kind | rows seen | in window (n) | amount | typical | true_p | "
        "detector's tail p | its p x n | detector said |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in sorted(rows, key=lambda row: (row["shape"], row["merchant"])):
        verdict = said.get(row["id"])
        estimated = verdict.get("tail_probability") if verdict else None
        shown = (
            ("-", "-")
            if estimated is None
            else (f"{estimated:.2g}", f"{estimated * row['window']:.2f}")
        )
        lines.append(
            f"| {row['merchant']} | {row['shape']} | {row['anomaly_kind']} | {row['seen']} | "
            f"{row['window']} | {row['amount']} | {row['typical']:.2f} | {row['true_p']:.2g} | "
            f"{shown[0]} | {shown[1]} | {_said(verdict)} |"
        )
    return lines


def results_table(paths: Sequence[Path]) -> str:
    """Markdown: high+ precision, recall and false alerts per 10k of each method in each
    backtest --json file, and their mean over the files (seeds)."""
    figures = {path: json.loads(path.read_text()) for path in paths}
    lines = [
        "| method | file | high+ precision | high+ recall | high+ false / 10k | "
        "recall at 2 / 5 / 13 per 10k |",
        "|---|---|---:|---:|---:|---|",
    ]
    for method in next(iter(figures.values())):
        rows = [(path.stem, entry[method]) for path, entry in figures.items()]
        for name, entry in rows:
            high, at = entry["high+"], entry["recall_at"]
            lines.append(
                f"| {method} | {name} | {high['precision']:.2f} | {high['recall']:.2f} | "
                f"{high['false_alerts_per_10k']:.1f} | "
                + " / ".join(f"{at[k]:.2f}" for k in ("2", "5", "13"))
                + " |"
            )
        mean = {
            key: sum(entry["high+"][key] for _, entry in rows) / len(rows)
            for key in ("precision", "recall", "false_alerts_per_10k")
        }
        at_mean = [
            sum(entry["recall_at"][k] for _, entry in rows) / len(rows) for k in ("2", "5", "13")
        ]
        lines.append(
            f"| **{method}** | **mean** | **{mean['precision']:.2f}** | **{mean['recall']:.2f}** | "
            f"**{mean['false_alerts_per_10k']:.1f}** | "
            + " / ".join(f"{v:.2f}" for v in at_mean)
            + " |"
        )
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------


def summary(rows: Sequence[Row]) -> str:
    anomalies = [row for row in rows if row.is_fraud]
    merchants = Counter(row.merchant.name for row in rows)
    shapes = Counter(row.merchant.shape.shape for row in rows)
    kinds = Counter(row.kind for row in anomalies)
    few = sum(count < 100 for count in merchants.values())
    return (
        f"{len(rows):,} rows, {len(merchants)} merchants ({few} with < 100 rows), "
        f"{len(anomalies)} anomalies ({len(anomalies) / len(rows):.2%}: {dict(kinds)}), "
        f"shapes {dict(shapes)}, {rows[0].when:%Y-%m-%d} to {rows[-1].when:%Y-%m-%d}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.blind_stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the stream here (JSON lines)")
    parser.add_argument("--transactions", type=int, default=TRANSACTIONS)
    parser.add_argument(
        "--end", type=date.fromisoformat, help="the last day (default: yesterday, UTC)"
    )
    parser.add_argument(
        "--explain",
        nargs="+",
        type=Path,
        metavar="ALERTS STREAM",
        help="break down a backtest's --alerts file against its stream (pairs: pooled)",
    )
    parser.add_argument(
        "--table", nargs="+", type=Path, metavar="JSON", help="tabulate backtest --json files"
    )
    parser.add_argument(
        "--exclude", nargs="+", default=[], metavar="MERCHANT", help="with --explain: leave out"
    )
    parser.add_argument("--warmup-days", type=float, default=WARMUP_DAYS)
    args = parser.parse_args(argv)
    if args.table:
        print(results_table(args.table))
        return
    if args.explain:
        if len(args.explain) % 2:
            parser.error("--explain takes pairs: ALERTS STREAM [ALERTS STREAM ...]")
        pairs = list(zip(args.explain[::2], args.explain[1::2], strict=True))
        print(explain(pairs, args.warmup_days, args.exclude))
        return
    if args.out is None:
        parser.error("--out is required (or --explain)")
    rows = generate(args.seed, args.transactions, args.end)
    write(rows, args.out)
    print(f"{args.out}: {summary(rows)}")


if __name__ == "__main__":
    main()
