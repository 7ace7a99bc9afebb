"""Labelled transaction streams over a world of families, each transaction with its true rarity.

What it does: `generate_stream(seed, config)` replays the world of benchmarks/world.py day by
day: every merchant sells a Poisson number of transactions a day (its volume times the weekday's,
at hours that follow the daily profile), each amount drawn from the merchant's family at that
moment. From `anomaly_from_day` on (after an evaluation's warm-up) it injects labelled
anomalies at about `anomaly_share` of the traffic, at merchants chosen with a weight that
favours large ones but leaves small and late ones some: a `spike` of `spike_multiple` (3-30x,
log-uniform; wider for power-law tails) times the merchant's median at that moment, or, at a
fixed-price merchant, a `stable_jump`: the price charged `jump_multiple` (2-20x) times.

Every item is a `benchmarks.generator.LabelledTransaction` (so `benchmarks.accuracy.replay`
takes the stream as it is) that also carries its family, merchant size, an anomaly's multiple,
and `p_true`: the true P(amount >= this amount) under its merchant's NORMAL distribution at
that moment, which is what the oracle ranks by. `record_of` turns an item and a method's
verdict into the `benchmarks.evaluate.ScoredRecord` the evaluation reads.

    .venv/bin/python -m benchmarks.streams --seed 7 --out stream.jsonl

writes a stream as JSON lines: the transaction's fields plus its labels (is_anomaly, anomaly,
family, size, p_true, multiple, drifting), for a backtest that reads files.
"""

import argparse
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from benchmarks.evaluate import ScoredRecord
from benchmarks.families import FixedPrice, log_uniform, money
from benchmarks.generator import HOUR_WEIGHTS, WEEKDAY_VOLUME, AnomalyKind, LabelledTransaction
from benchmarks.world import MerchantSize, MerchantSpec, WorldConfig, build_world
from schemas import Transaction


@dataclass(frozen=True)
class StreamConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    # The stream: 45 days, the last 7 evaluated, 0.4 % anomalies.
    anomaly_from_day: int = 38
    anomaly_share: float = 0.004
    spike_multiple: tuple[float, float] = (3.0, 30.0)
    # A power-law tail crosses 30x its median every few hundred transactions: there a spike
    # of that size is ordinary, so the spikes reach further (the oracle says which are rare).
    spike_multiple_by_family: tuple[tuple[str, float, float], ...] = (
        ("pareto", 5.0, 500.0),
        ("burr", 5.0, 500.0),  # a hold-out power law (round 4), read as the Lomax is
    )
    jump_multiple: tuple[float, float] = (2.0, 20.0)
    # A merchant's chance to host an anomaly grows as its volume ** this (0: all alike).
    anomaly_volume_power: float = 0.5

    def spike_range(self, family: str) -> tuple[float, float]:
        ranges = {name: (low, high) for name, low, high in self.spike_multiple_by_family}
        return ranges.get(family, self.spike_multiple)

    def scored_from(self) -> datetime:
        return self.world.day_start(self.anomaly_from_day)


@dataclass(frozen=True)
class StreamItem(LabelledTransaction):
    family: str = ""
    size: MerchantSize = MerchantSize.LARGE
    p_true: float = 1.0
    multiple: float | None = None  # an anomaly's amount ÷ its merchant's median (or price)


def generate_stream(seed: int, config: StreamConfig | None = None) -> list[StreamItem]:
    """The whole stream in time order (ties broken by id): the same seed, the same stream."""
    config = config or StreamConfig()
    if not 0 <= config.anomaly_from_day < config.world.days:
        raise ValueError("anomaly_from_day must fall inside the stream's days")
    merchants = build_world(seed, config.world)
    builder = _Builder(random.Random(seed * 1_000_003 + 1), config)
    items: list[StreamItem] = []
    for day in range(config.world.days):
        normal = [item for m in merchants for item in builder.normal_day(m, day)]
        items += normal
        if day >= config.anomaly_from_day:
            items += builder.anomalies(merchants, day, len(normal))
    return sorted(items, key=lambda i: (i.transaction.transaction_date, i.transaction.id))


def record_of(item: StreamItem, severity: str | None, score: float) -> ScoredRecord:
    """What the evaluation needs of one scored item: `score` is the method's continuous
    score, higher meaning more anomalous (a z-equivalent; -inf where it gave none)."""
    return ScoredRecord(
        is_anomaly=item.is_anomaly,
        family=item.family,
        p_true=item.p_true,
        severity=severity,
        score=score,
        kind=None if item.anomaly is None else str(item.anomaly),
        segment=str(item.size),
    )


def to_row(item: StreamItem) -> dict[str, Any]:
    """One JSON line: the transaction as on the wire, then its labels."""
    return {
        **item.transaction.model_dump(mode="json", exclude_none=True),
        "is_anomaly": item.is_anomaly,
        "anomaly": None if item.anomaly is None else str(item.anomaly),
        "family": item.family,
        "size": str(item.size),
        "p_true": item.p_true,
        "multiple": item.multiple,
        "drifting": item.drifting,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a labelled stream as JSON lines.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--volume", type=float, default=1.0, help="x ~3,000 transactions a day")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    config = StreamConfig(world=WorldConfig(volume=args.volume))
    with args.out.open("w") as out:
        for item in generate_stream(args.seed, config):
            out.write(json.dumps(to_row(item)) + "\n")


class _Builder:
    """Holds the stream's one random source, so that the stream follows from the seed."""

    def __init__(self, rng: random.Random, config: StreamConfig) -> None:
        self.rng = rng
        self.config = config

    def normal_day(self, merchant: MerchantSpec, day: int) -> Iterator[StreamItem]:
        if day < merchant.first_day:
            return
        weekday = self.config.world.day_start(day).weekday()
        for _ in range(_poisson(self.rng, merchant.per_day * WEEKDAY_VOLUME[weekday])):
            when = self.moment(day)
            amount = merchant.family.sample(self.rng, when)
            yield self.item(merchant, when, amount)

    def anomalies(
        self, merchants: tuple[MerchantSpec, ...], day: int, normal_count: int
    ) -> Iterator[StreamItem]:
        active = [m for m in merchants if m.first_day <= day]
        weights = [m.per_day**self.config.anomaly_volume_power for m in active]
        count = _poisson(self.rng, self.config.anomaly_share * normal_count)
        for merchant in self.rng.choices(active, weights, k=count):
            yield self.anomaly(merchant, self.moment(day))

    def anomaly(self, merchant: MerchantSpec, when: datetime) -> StreamItem:
        family = merchant.family
        if isinstance(family, FixedPrice):
            kind, low_high = AnomalyKind.STABLE_JUMP, self.config.jump_multiple
        else:
            kind, low_high = AnomalyKind.SPIKE, self.config.spike_range(family.name)
        multiple = log_uniform(self.rng, *low_high)
        amount = money(family.median(when) * multiple)
        return self.item(merchant, when, amount, kind, multiple)

    def item(
        self,
        merchant: MerchantSpec,
        when: datetime,
        amount: Decimal,
        kind: AnomalyKind | None = None,
        multiple: float | None = None,
    ) -> StreamItem:
        txn = Transaction(
            id=UUID(int=self.rng.getrandbits(128), version=4),
            amount=amount,
            currency=merchant.currency,
            category=merchant.category,
            merchant=merchant.name,
            transaction_date=when,
        )
        return StreamItem(
            transaction=txn,
            anomaly=kind,
            drifting=merchant.drifting,
            family=merchant.family.name,
            size=merchant.size,
            p_true=merchant.family.survival(txn.amount, when),
            multiple=multiple,
        )

    def moment(self, day: int) -> datetime:
        """A time in the day, following the hourly volume profile."""
        hour = self.rng.choices(range(24), HOUR_WEIGHTS)[0]
        offset = timedelta(hours=hour, seconds=self.rng.randrange(3600))
        return self.config.world.day_start(day) + offset


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's product of uniforms for small means, the normal approximation past 30."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


if __name__ == "__main__":
    main()
