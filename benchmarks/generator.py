"""Labelled synthetic transaction streams, deterministic for a seed, for tests and benchmarks.

Normal traffic: eight categories of merchants with log-normal amounts at their own scale
(groceries ~40, electronics ~400, rent ~1,500 with a tight spread, subscriptions at one fixed
price), in USD, EUR and GBP, with daily and weekly seasonality in volume and, mildly, in
amounts. One merchant drifts upwards a few % a day: labelled normal, it must not alert.

Labelled anomalies, placed only from `anomaly_from_day` on (after an evaluation's warm-up):
single spikes, bursts at one merchant, jumps of a fixed-price subscription, and brand-new
merchants with an extreme first amount. New merchants with ordinary amounts appear as well
(normal), so "new" alone is not a signal.
"""

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from schemas import Transaction


class AnomalyKind(StrEnum):
    SPIKE = "spike"
    BURST = "burst"
    STABLE_JUMP = "stable_jump"
    NEW_MERCHANT = "new_merchant"


@dataclass(frozen=True)
class LabelledTransaction:
    transaction: Transaction
    anomaly: AnomalyKind | None = None
    # Shifted by the slow drift: still normal (a good detector follows it), counted apart.
    drifting: bool = False

    @property
    def is_anomaly(self) -> bool:
        return self.anomaly is not None


@dataclass(frozen=True)
class Merchant:
    name: str
    median: float  # typical USD amount; the fixed price when sigma is 0
    sigma: float  # spread of ln(amount)
    weight: float = 1.0  # share of its category's volume
    currencies: tuple[tuple[str, float], ...] = (("USD", 0.65), ("EUR", 0.28), ("GBP", 0.07))


@dataclass(frozen=True)
class Category:
    name: str
    weight: float
    merchants: tuple[Merchant, ...]
    weekend_volume: float = 1.0  # volume multiplier on Saturday and Sunday
    weekend_amount: float = 1.0  # amount multiplier on Saturday and Sunday
    evening_amount: float = 1.0  # amount multiplier from 18:00 to 22:59


CATALOGUE: tuple[Category, ...] = (
    Category(
        "groceries",
        0.30,
        (
            Merchant("FreshMart", 45, 0.5, 5),
            Merchant("GreenGrocer", 35, 0.45, 3),
            Merchant("CornerShop", 18, 0.6, 2),
        ),
        weekend_volume=1.3,
        weekend_amount=1.10,
    ),
    Category(
        "restaurants",
        0.22,
        (
            Merchant("Bistro Lumiere", 62, 0.4, 2),
            Merchant("PizzaPlace", 28, 0.35, 3),
            Merchant("SushiBar", 85, 0.45, 1),
            Merchant("CornerCafe", 9, 0.3, 4),
        ),
        weekend_volume=1.4,
        weekend_amount=1.08,
        evening_amount=1.12,
    ),
    Category(
        "fuel",
        0.12,
        (Merchant("GasCo", 55, 0.3, 3), Merchant("QuickFuel", 48, 0.35, 2)),
        weekend_volume=0.9,
    ),
    Category(
        "electronics",
        0.06,
        (Merchant("TechStore", 420, 0.75, 2), Merchant("GadgetHub", 180, 0.8, 3)),
        weekend_volume=1.5,
        weekend_amount=1.05,
    ),
    Category(
        "travel",
        0.05,
        (
            Merchant("SkyAir", 380, 0.7, 2),
            Merchant("RailEU", 90, 0.5, 2, (("EUR", 1.0),)),
            Merchant("HotelStay", 210, 0.55, 2),
        ),
        weekend_volume=1.2,
    ),
    Category(
        "rent",
        0.03,
        (Merchant("CityLettings", 1500, 0.04, 1), Merchant("HomeRent", 1150, 0.05, 1)),
        weekend_volume=0.3,
    ),
    Category(
        "subscriptions",
        0.08,
        (
            Merchant("StreamFlix", 9.99, 0, 3),
            Merchant("CloudBox", 2.99, 0, 2),
            Merchant("NewsDaily", 14.99, 0, 1),
        ),
    ),
    Category(
        "pharmacy",
        0.09,
        (Merchant("PharmaPlus", 22, 0.7, 2), Merchant("HealthHub", 38, 0.6, 1)),
        weekend_volume=0.8,
    ),
)
FX: dict[str, float] = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}
# Relative volume by UTC hour (one market's day: quiet nights, lunch and evening peaks).
HOUR_WEIGHTS = (0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.5, 0.9, 1.2, 1.3, 1.4, 1.6,
                1.9, 1.8, 1.4, 1.3, 1.4, 1.7, 2.0, 2.0, 1.7, 1.3, 0.9, 0.5)  # fmt: skip
WEEKDAY_VOLUME = (0.95, 0.95, 1.0, 1.0, 1.15, 1.25, 0.8)  # Monday .. Sunday


@dataclass(frozen=True)
class StreamConfig:
    days: int = 60
    per_day: int = 1000
    start: date = date(2025, 1, 6)  # a Monday
    # Anomalies only from this day on, so that an evaluation's warm-up holds none.
    anomaly_from_day: int = 30
    spikes_per_day: float = 2.0
    bursts_per_day: float = 0.4
    stable_jumps_per_day: float = 0.7
    new_merchants_per_day: float = 0.5
    normal_new_merchants_per_day: float = 0.5
    drift_merchant: str = "GasCo"
    drift_from_day: int = 20
    drift_per_day: float = 0.02

    def day_start(self, day: int) -> datetime:
        return datetime.combine(self.start + timedelta(days=day), time(), tzinfo=UTC)


DEFAULT_CONFIG = StreamConfig()
_MERCHANTS = [(c, m) for c in CATALOGUE for m in c.merchants]


def money(value: float) -> Decimal:
    """Cents, never below one: the smallest amount a card network accepts."""
    return max(Decimal(f"{value:.2f}"), Decimal("0.01"))


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _currency(rng: random.Random, merchant: Merchant) -> str:
    codes = [code for code, _ in merchant.currencies]
    return rng.choices(codes, [weight for _, weight in merchant.currencies])[0]


def _seasonal(category: Category, when: datetime) -> float:
    factor = category.weekend_amount if when.weekday() >= 5 else 1.0
    return factor * (category.evening_amount if 18 <= when.hour <= 22 else 1.0)


def _typical(merchant: Merchant, category: Category, currency: str, when: datetime) -> float:
    """The median amount of the merchant at that moment (fixed price: the price itself)."""
    if merchant.sigma == 0:
        return merchant.median * FX[currency]
    return merchant.median * FX[currency] * _seasonal(category, when)


def _normal_amount(
    rng: random.Random, merchant: Merchant, category: Category, currency: str, when: datetime
) -> Decimal:
    typical = _typical(merchant, category, currency, when)
    if merchant.sigma == 0:
        return money(typical)
    return money(rng.lognormvariate(math.log(typical), merchant.sigma))


class _Builder:
    """Holds the one random source, so that the whole stream follows from the seed."""

    def __init__(self, seed: int, config: StreamConfig) -> None:
        self.rng = random.Random(seed)
        self.config = config

    def txn(
        self, category: str, merchant: str, currency: str, amount: Decimal, when: datetime
    ) -> Transaction:
        return Transaction(
            id=_uuid(self.rng),
            amount=amount,
            currency=currency,
            category=category,
            merchant=merchant,
            transaction_date=when,
        )

    def moment(self, day: int) -> datetime:
        """A time in the day, following the hourly volume profile."""
        hour = self.rng.choices(range(24), HOUR_WEIGHTS)[0]
        offset = timedelta(hours=hour, seconds=self.rng.randrange(3600))
        return self.config.day_start(day) + offset

    def normal_day(self, day: int) -> Iterator[LabelledTransaction]:
        weekend = self.config.day_start(day).weekday() >= 5
        weights = [
            c.weight
            * (c.weekend_volume if weekend else 1.0)
            * m.weight
            / sum(x.weight for x in c.merchants)
            for c, m in _MERCHANTS
        ]
        volume = self.config.per_day * WEEKDAY_VOLUME[self.config.day_start(day).weekday()]
        count = round(volume * self.rng.uniform(0.9, 1.1))
        for category, merchant in self.rng.choices(_MERCHANTS, weights, k=count):
            yield self.normal(category, merchant, self.moment(day))

    def normal(self, category: Category, merchant: Merchant, when: datetime) -> LabelledTransaction:
        currency = _currency(self.rng, merchant)
        amount = _normal_amount(self.rng, merchant, category, currency, when)
        drift = self.drift_factor(merchant, when)
        if drift is not None:
            amount = money(float(amount) * drift)
        txn = self.txn(category.name, merchant.name, currency, amount, when)
        return LabelledTransaction(txn, drifting=drift is not None)

    def drift_factor(self, merchant: Merchant, when: datetime) -> float | None:
        config = self.config
        since = config.day_start(config.drift_from_day)
        if merchant.name != config.drift_merchant or when < since:
            return None
        return float((1 + config.drift_per_day) ** ((when - since) / timedelta(days=1)))

    def anomalies(self) -> Iterator[LabelledTransaction]:
        config = self.config
        scored_days = config.days - config.anomaly_from_day
        plan = (
            (config.spikes_per_day, self.spike),
            (config.bursts_per_day, self.burst),
            (config.stable_jumps_per_day, self.stable_jump),
            (config.new_merchants_per_day, self.new_merchant),
            (config.normal_new_merchants_per_day, self.normal_new_merchant),
        )
        for rate, make in plan:
            # At least one of each kind, so that even a short stream exercises every case.
            for index in range(max(1, round(rate * scored_days))):
                day = self.rng.randrange(config.anomaly_from_day, config.days)
                yield from make(self.moment(day), str(index + 1))

    def pick(self, fixed_price: bool) -> tuple[Category, Merchant, str]:
        choices = [
            (c, m)
            for c, m in _MERCHANTS
            if (m.sigma == 0) == fixed_price and m.name != self.config.drift_merchant
        ]
        category, merchant = self.rng.choice(choices)
        return category, merchant, _currency(self.rng, merchant)

    def spike(self, when: datetime, _tag: str) -> Iterator[LabelledTransaction]:
        category, merchant, currency = self.pick(fixed_price=False)
        typical = _typical(merchant, category, currency, when)
        amount = money(typical * _log_uniform(self.rng, 5, 50))
        txn = self.txn(category.name, merchant.name, currency, amount, when)
        yield LabelledTransaction(txn, AnomalyKind.SPIKE)

    def burst(self, when: datetime, _tag: str) -> Iterator[LabelledTransaction]:
        category, merchant, currency = self.pick(fixed_price=False)
        typical = _typical(merchant, category, currency, when)
        for _ in range(self.rng.randint(3, 6)):
            at = when + timedelta(seconds=self.rng.randrange(30 * 60))
            amount = money(typical * _log_uniform(self.rng, 3, 8))
            txn = self.txn(category.name, merchant.name, currency, amount, at)
            yield LabelledTransaction(txn, AnomalyKind.BURST)

    def stable_jump(self, when: datetime, _tag: str) -> Iterator[LabelledTransaction]:
        category, merchant, currency = self.pick(fixed_price=True)
        price = _typical(merchant, category, currency, when)
        amount = money(price * _log_uniform(self.rng, 3, 30))
        txn = self.txn(category.name, merchant.name, currency, amount, when)
        yield LabelledTransaction(txn, AnomalyKind.STABLE_JUMP)

    def new_merchant(self, when: datetime, tag: str) -> Iterator[LabelledTransaction]:
        category = self.rng.choice(CATALOGUE)
        currency = self.rng.choices(("USD", "EUR", "GBP"), (0.65, 0.28, 0.07))[0]
        # Judged against its category: make it extreme there, not just for its own kind.
        top = max(m.median for m in category.merchants) * FX[currency]
        amount = money(top * _log_uniform(self.rng, 20, 100))
        txn = self.txn(category.name, f"New Merchant {tag}", currency, amount, when)
        yield LabelledTransaction(txn, AnomalyKind.NEW_MERCHANT)

    def normal_new_merchant(self, when: datetime, tag: str) -> Iterator[LabelledTransaction]:
        """A shop opening with ordinary takings: new, yet normal."""
        category, model, _ = self.pick(fixed_price=False)
        opening = Merchant(f"Opening Shop {tag}", model.median, model.sigma)
        for _ in range(self.rng.randint(1, 5)):
            at = when + timedelta(seconds=self.rng.randrange(6 * 3600))
            yield self.normal(category, opening, at)


def generate(seed: int, config: StreamConfig = DEFAULT_CONFIG) -> list[LabelledTransaction]:
    """The whole stream in time order (ties broken by id, so the order is deterministic)."""
    if not 0 <= config.anomaly_from_day < config.days:
        raise ValueError("anomaly_from_day must fall inside the stream's days")
    builder = _Builder(seed, config)
    items = [item for day in range(config.days) for item in builder.normal_day(day)]
    end = config.day_start(config.days)
    items += [item for item in builder.anomalies() if item.transaction.transaction_date < end]
    return sorted(items, key=lambda i: (i.transaction.transaction_date, i.transaction.id))
