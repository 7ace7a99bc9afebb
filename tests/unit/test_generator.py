"""The labelled stream generator: deterministic, realistic in shape, every anomaly labelled."""

import statistics
from collections import Counter
from datetime import UTC, timedelta
from decimal import Decimal

import pytest

from benchmarks.generator import AnomalyKind, LabelledTransaction, StreamConfig, generate

CONFIG = StreamConfig(
    days=14, per_day=150, anomaly_from_day=10, drift_from_day=4, drift_per_day=0.05
)


@pytest.fixture(scope="module")
def stream() -> list[LabelledTransaction]:
    return generate(3, CONFIG)


def test_same_seed_gives_the_same_stream(stream: list[LabelledTransaction]) -> None:
    assert generate(3, CONFIG) == stream


def test_another_seed_gives_another_stream(stream: list[LabelledTransaction]) -> None:
    other = generate(4, CONFIG)
    assert [i.transaction.id for i in other] != [i.transaction.id for i in stream]


def test_every_anomaly_kind_is_present_after_the_warm_up(
    stream: list[LabelledTransaction],
) -> None:
    anomalies = [i for i in stream if i.is_anomaly]
    assert {i.anomaly for i in anomalies} == set(AnomalyKind)
    first_scored = CONFIG.day_start(CONFIG.anomaly_from_day)
    assert all(i.transaction.transaction_date >= first_scored for i in anomalies)
    # Rare, as in real traffic: well under 2 % of the stream.
    assert len(anomalies) < 0.02 * len(stream)


def test_amounts_are_positive_cents(stream: list[LabelledTransaction]) -> None:
    for item in stream:
        amount = item.transaction.amount
        assert isinstance(amount, Decimal)
        assert amount > 0
        assert amount == amount.quantize(Decimal("0.01"))


def test_dates_are_utc_in_range_and_in_order(stream: list[LabelledTransaction]) -> None:
    dates = [i.transaction.transaction_date for i in stream]
    assert dates == sorted(dates)
    assert all(d.tzinfo == UTC for d in dates)
    assert CONFIG.day_start(0) <= dates[0]
    assert dates[-1] < CONFIG.day_start(CONFIG.days)


def test_ids_are_unique(stream: list[LabelledTransaction]) -> None:
    assert len({i.transaction.id for i in stream}) == len(stream)


def test_several_currencies_categories_and_merchants(stream: list[LabelledTransaction]) -> None:
    txns = [i.transaction for i in stream]
    assert {"USD", "EUR"} <= {t.currency for t in txns}
    assert len({t.category for t in txns}) >= 6
    assert len({t.merchant for t in txns}) >= 15


def test_scales_differ_by_category(stream: list[LabelledTransaction]) -> None:
    def median(category: str) -> Decimal:
        return statistics.median(
            i.transaction.amount
            for i in stream
            if i.transaction.category == category
            and i.transaction.currency == "USD"
            and not i.is_anomaly
        )

    assert median("groceries") < 60 < median("electronics") < median("rent")


def test_fixed_price_subscription_never_varies_when_normal(
    stream: list[LabelledTransaction],
) -> None:
    prices = {
        i.transaction.amount
        for i in stream
        if i.transaction.merchant == "StreamFlix"
        and i.transaction.currency == "USD"
        and not i.is_anomaly
    }
    assert prices == {Decimal("9.99")}


def test_volume_follows_the_day_and_the_week(stream: list[LabelledTransaction]) -> None:
    hours = Counter(i.transaction.transaction_date.hour for i in stream)
    assert hours[3] + hours[4] < (hours[12] + hours[13]) / 4
    weekdays = Counter(i.transaction.transaction_date.weekday() for i in stream)
    assert weekdays[5] > weekdays[6]  # Saturday busier than Sunday (two of each in 14 days)


def test_drift_is_normal_and_creeps_up(stream: list[LabelledTransaction]) -> None:
    drifting = [i for i in stream if i.drifting]
    assert drifting
    assert all(not i.is_anomaly and i.transaction.merchant == "GasCo" for i in drifting)
    drift_start = CONFIG.day_start(CONFIG.drift_from_day)
    assert all(i.transaction.transaction_date >= drift_start for i in drifting)

    def median_on(first_day: int) -> Decimal:
        start = CONFIG.day_start(first_day)
        return statistics.median(
            i.transaction.amount
            for i in drifting
            if i.transaction.currency == "USD"
            and start <= i.transaction.transaction_date < start + timedelta(days=3)
        )

    # 5 %/day over 7 days is +41 %: about three times the noise of a median of ~20 amounts.
    assert median_on(CONFIG.days - 3) > median_on(CONFIG.drift_from_day)


def test_anomaly_days_must_lie_inside_the_stream() -> None:
    with pytest.raises(ValueError, match="anomaly_from_day"):
        generate(1, StreamConfig(days=5, anomaly_from_day=5))
