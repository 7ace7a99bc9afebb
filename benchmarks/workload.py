"""The synthetic load every benchmark sends: baselines for a set of scopes, then transactions
against them, about 1% of them outliers (50x the usual amount) so that alerts happen."""

import math
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from baseline_worker.histogram import histogram
from baseline_worker.tail import TailFit, fit_tail
from schemas import Baseline, BaselineScope, ScopeKind, TailModel, Transaction, encode_model
from schemas.records import transaction_key
from shared.kafka import make_producer

CATEGORIES = [f"category-{i}" for i in range(20)]
MERCHANTS = [f"merchant-{i}" for i in range(500)]
OUTLIER_SHARE = 0.01


def _tail() -> TailModel | None:
    """The tail the baseline worker fits to 1,000 log-normal amounts around 45, as a
    detector holds it for a busy scope (about a dozen knots)."""
    rng = random.Random(1)
    return fit_tail(histogram(math.exp(rng.gauss(3.8, 0.5)) for _ in range(1000)), TailFit())


def baselines(
    now: datetime, merchants: Sequence[str] = MERCHANTS, categories: Sequence[str] = CATEGORIES
) -> list[Baseline]:
    """One baseline per category and per merchant (USD): amounts around 45, log-normal."""
    tail = _tail()
    scopes = [BaselineScope(kind=ScopeKind.CATEGORY, name=c, currency="USD") for c in categories]
    scopes += [BaselineScope(kind=ScopeKind.MERCHANT, name=m, currency="USD") for m in merchants]
    return [
        Baseline(
            id=uuid.uuid4(),
            scope=s,
            count=1000,
            mean=50.0,
            stddev=20.0,
            log_mean=3.8,
            log_stddev=0.5,
            tail=tail,
            window_days=30,
            computed_at=now,
        )
        for s in scopes
    ]


def amount(rng: random.Random) -> Decimal:
    """1.00-90.00, or 50 times that for about 1% (critical outliers on the baselines above)."""
    value = Decimal(rng.randint(100, 9000)) / 100
    return value * 50 if rng.random() < OUTLIER_SHARE else value


def transaction(
    rng: random.Random, now: datetime, index: int, merchants: Sequence[str] = MERCHANTS
) -> Transaction:
    """The `index`-th transaction of a stream; `now` becomes its received_at."""
    return Transaction(
        id=uuid.uuid4(),
        amount=amount(rng),
        category=rng.choice(CATEGORIES),
        merchant=rng.choice(merchants),
        received_at=now,
        transaction_date=now - timedelta(seconds=index),
    )


def http_body(rng: random.Random, now: datetime) -> dict[str, str]:
    """The same kind of transaction as a `POST /transactions` body."""
    return {
        "amount": str(amount(rng)),
        "currency": "USD",
        "category": rng.choice(CATEGORIES),
        "merchant": rng.choice(MERCHANTS),
        "transaction_date": now.isoformat(),
    }


async def publish_baselines(bootstrap: str, topic: str, items: Sequence[Baseline]) -> None:
    """Put baselines on the (compacted) baselines topic, as the baseline worker would."""
    producer = make_producer(bootstrap, linger_ms=20)
    await producer.start()
    try:
        for baseline in items:
            await producer.send(topic, key=baseline.scope.key(), value=encode_model(baseline))
        await producer.flush()
    finally:
        await producer.stop()


async def produce_transactions(
    bootstrap: str, topic: str, count: int, seed: int = 7, merchants: Sequence[str] = MERCHANTS
) -> None:
    """`count` transactions straight to the transactions topic, as fast as the producer goes."""
    producer = make_producer(bootstrap, linger_ms=20)
    await producer.start()
    rng, now = random.Random(seed), datetime.now(UTC)
    try:
        for i in range(count):
            txn = transaction(rng, now, i, merchants)
            await producer.send(topic, key=transaction_key(txn.id), value=encode_model(txn))
        await producer.flush()
    finally:
        await producer.stop()
