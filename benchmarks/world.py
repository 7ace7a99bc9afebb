"""The merchants of a benchmark world: which family each draws its amounts from, at what volume.

What it does: `build_world(seed, config)` makes, for every distribution family of
benchmarks/families.py that the config names (the eight of issue 12 by default), one category
whose merchants all draw from that family with their own parameters (drawn from the seed),
at four sizes: large (hundreds a day), medium, small (a few a
day) and late (appear in the last days with a few a day). Each merchant has one currency, so
its scope (merchant, currency) holds exactly one distribution; some merchants drift upwards
slowly. Deterministic for a seed.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from benchmarks.families import (
    AmountFamily,
    Drift,
    FixedPrice,
    Gamma,
    LogNormal,
    Lomax,
    Mixture,
    RoundAmounts,
    Seasonal,
    TruncatedNormal,
    Weibull,
    log_uniform,
)
from benchmarks.holdout_families import (
    BurrXII,
    CardChecks,
    CharmPrices,
    PriceList,
    monday_peak,
    weekend_shift,
)


class MerchantSize(StrEnum):
    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    LATE = "late"  # appears in the last `late_days` days


@dataclass(frozen=True)
class WorldConfig:
    days: int = 45
    start: date = date(2025, 1, 6)  # a Monday
    # Per size: merchants per family, and their mean transactions a day (before `volume`).
    # The default: about 375 transactions a day per family, 3,000 over the 8 families.
    sizes: tuple[tuple[MerchantSize, int, float], ...] = (
        (MerchantSize.LARGE, 2, 150.0),
        (MerchantSize.MEDIUM, 2, 30.0),
        (MerchantSize.SMALL, 3, 3.0),
        (MerchantSize.LATE, 2, 4.0),
    )
    volume: float = 1.0  # scales every merchant's volume (a small stream for tests)
    families: tuple[str, ...] = ()  # by name, from FAMILIES; () means DEFAULT_FAMILIES
    late_days: int = 5
    drifting_share: float = 0.25
    drift_per_day: tuple[float, float] = (0.005, 0.02)  # log-uniform between the two
    currencies: tuple[tuple[str, float], ...] = (("USD", 0.7), ("EUR", 0.22), ("GBP", 0.08))

    def day_start(self, day: int) -> datetime:
        return datetime.combine(self.start + timedelta(days=day), time(), tzinfo=UTC)


@dataclass(frozen=True)
class MerchantSpec:
    name: str
    category: str
    currency: str
    family: AmountFamily
    size: MerchantSize
    per_day: float
    first_day: int  # 0 except for late merchants

    @property
    def drifting(self) -> bool:
        return self.family.drift.per_day != 0.0


def _lognormal(rng: random.Random) -> AmountFamily:
    return LogNormal(log_uniform(rng, 15, 120), rng.uniform(0.3, 0.9))


def _gamma(rng: random.Random) -> AmountFamily:
    shape = rng.uniform(1.5, 6.0)
    return Gamma(shape, log_uniform(rng, 20, 150) / shape)


def _pareto(rng: random.Random) -> AmountFamily:
    return Lomax(log_uniform(rng, 50, 400), rng.uniform(1.6, 3.0), floor=rng.uniform(0, 20))


def _weibull(rng: random.Random) -> AmountFamily:
    return Weibull(log_uniform(rng, 40, 600), rng.uniform(0.6, 1.6))


def _normal(rng: random.Random) -> AmountFamily:
    mean = log_uniform(rng, 30, 120)
    return TruncatedNormal(mean, mean * rng.uniform(0.12, 0.3))


def _fixed_price(rng: random.Random) -> AmountFamily:
    price = rng.choice((2.99, 4.99, 9.99, 14.99, 19.99, 29.99))
    if rng.random() < 0.5:
        return FixedPrice(price)
    return FixedPrice(price, round(price * 2, 2), rng.uniform(0.02, 0.1))


def _mixture(rng: random.Random) -> AmountFamily:
    low = log_uniform(rng, 8, 40)
    modes = (
        LogNormal(low, rng.uniform(0.25, 0.45)),
        LogNormal(low * rng.uniform(4, 10), rng.uniform(0.3, 0.5)),
    )
    high_share = rng.uniform(0.15, 0.4)
    return Mixture(modes, (1 - high_share, high_share))


def _seasonal(rng: random.Random) -> AmountFamily:
    base = _gamma(rng) if rng.random() < 0.5 else _lognormal(rng)
    # Each merchant's own amplitude around the default profiles (1: as they are).
    amplitude = rng.uniform(0.5, 1.5)
    default = Seasonal(base)
    return Seasonal(
        base,
        weekday=tuple(1 + amplitude * (f - 1) for f in default.weekday),
        hour=tuple(1 + amplitude * (f - 1) for f in default.hour),
    )


def _round_amounts(rng: random.Random) -> AmountFamily:
    values = rng.choice(((10, 20, 50, 100), (25, 50, 100, 200), (5, 10, 20, 40)))
    weights = tuple(rng.uniform(0.5, 1.5) / (rank + 1) for rank in range(len(values)))
    return RoundAmounts(tuple(float(v) for v in values), weights)


def _burr(rng: random.Random) -> AmountFamily:
    c = rng.uniform(1.5, 4.0)
    return BurrXII(log_uniform(rng, 20, 200), c, rng.uniform(1.5, 3.5) / c)


def _price_list(rng: random.Random) -> AmountFamily:
    base = log_uniform(rng, 3, 15)
    count = rng.randint(3, 6)
    prices = tuple(max(0.99, round(base * log_uniform(rng, 0.5, 4)) - 0.01) for _ in range(count))
    weights = tuple(rng.uniform(0.5, 1.5) / (rank + 1) for rank in range(count))
    return PriceList(prices, weights, rng.uniform(0.2, 0.5))


def _weekend(rng: random.Random) -> AmountFamily:
    base = _gamma(rng) if rng.random() < 0.5 else _lognormal(rng)
    return weekend_shift(base, rng.uniform(1.4, 2.2))


def _monday_peak(rng: random.Random) -> AmountFamily:
    base = _gamma(rng) if rng.random() < 0.5 else _lognormal(rng)
    return monday_peak(base, rng.uniform(1.5, 2.5))


def _card_checks(rng: random.Random) -> AmountFamily:
    purchases = LogNormal(log_uniform(rng, 20, 150), rng.uniform(0.5, 1.0))
    return CardChecks(purchases, rng.uniform(0.05, 0.25))


def _charm_prices(rng: random.Random) -> AmountFamily:
    return CharmPrices(LogNormal(log_uniform(rng, 8, 120), rng.uniform(0.3, 0.8)))


# Family name -> (its category, a draw of one merchant's parameters).
FAMILIES: dict[str, tuple[str, Callable[[random.Random], AmountFamily]]] = {
    "lognormal": ("groceries", _lognormal),
    "gamma": ("restaurants", _gamma),
    "pareto": ("electronics", _pareto),
    "weibull": ("travel", _weibull),
    "normal": ("fuel", _normal),
    "fixed_price": ("subscriptions", _fixed_price),
    "mixture": ("pharmacy", _mixture),
    "seasonal": ("food_delivery", _seasonal),
    "round_amounts": ("gift_cards", _round_amounts),
    "burr": ("home_goods", _burr),
    "price_list": ("cafes", _price_list),
    "weekend": ("bars", _weekend),
    "card_checks": ("online_retail", _card_checks),
    "charm_prices": ("apparel", _charm_prices),
    "monday_peak": ("wholesale", _monday_peak),
}
# Hold-out families (round 4): never used to choose a default (benchmarks.tail_choice refuses
# them), only to report how the defaults do on shapes they were not tuned to.
ROUND4_HOLDOUTS: tuple[str, ...] = ("burr", "price_list", "weekend", "card_checks", "charm_prices")
# Added with the weekday levels and looked at once, at the end (docs/accuracy.md, "Weekday
# levels"): replayed in a stream of its own, so that the five's stream stays round 4's.
WEEKDAY_HOLDOUTS: tuple[str, ...] = ("monday_peak",)
HOLDOUT_FAMILIES: tuple[str, ...] = ROUND4_HOLDOUTS + WEEKDAY_HOLDOUTS
# The eight; round_amounts (many exact ties) and the hold-outs are opt-in.
DEFAULT_FAMILIES: tuple[str, ...] = tuple(
    name for name in FAMILIES if name != "round_amounts" and name not in HOLDOUT_FAMILIES
)
# A price changes in steps, not by a share a day: these never drift here.
UNDRIFTING: frozenset[str] = frozenset({"fixed_price", "price_list"})


def build_world(seed: int, config: WorldConfig) -> tuple[MerchantSpec, ...]:
    """Every merchant of every family, deterministic for the seed."""
    rng = random.Random(seed)
    return tuple(
        _merchant(rng, config, family, size, per_day, index)
        for family in config.families or DEFAULT_FAMILIES
        for size, count, per_day in config.sizes
        for index in range(1, count + 1)
    )


def _merchant(
    rng: random.Random,
    config: WorldConfig,
    family: str,
    size: MerchantSize,
    per_day: float,
    index: int,
) -> MerchantSpec:
    category, draw = FAMILIES[family]
    amounts = draw(rng)
    if family not in UNDRIFTING and rng.random() < config.drifting_share:
        since = config.day_start(rng.randrange(max(1, config.days // 2)))
        amounts = replace(amounts, drift=Drift(log_uniform(rng, *config.drift_per_day), since))
    codes, weights = zip(*config.currencies, strict=True)
    late = size is MerchantSize.LATE
    return MerchantSpec(
        name=f"{category}-{size}-{index}",
        category=category,
        currency=rng.choices(codes, weights)[0],
        family=amounts,
        size=size,
        per_day=per_day * config.volume,
        first_day=max(0, config.days - config.late_days) if late else 0,
    )
