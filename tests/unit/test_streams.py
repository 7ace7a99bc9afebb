"""Labelled streams over a world of families: deterministic per seed, anomalies only after the
warm-up, every item carrying its family and its true rarity, and replayable as it is."""

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks.accuracy import replay
from benchmarks.evaluate import ScoredRecord
from benchmarks.families import FixedPrice
from benchmarks.generator import AnomalyKind
from benchmarks.live_replay import body_of, shift_days
from benchmarks.streams import StreamConfig, StreamItem, generate_stream, main, record_of
from benchmarks.world import DEFAULT_FAMILIES, FAMILIES, MerchantSize, WorldConfig, build_world
from detector_worker.scoring import ScoringConfig
from schemas import Transaction

WORLD = WorldConfig(days=10, volume=0.08, late_days=3)
CONFIG = StreamConfig(world=WORLD, anomaly_from_day=7, anomaly_share=0.03)


@pytest.fixture(scope="module")
def stream() -> list[StreamItem]:
    return generate_stream(5, CONFIG)


def test_same_seed_gives_the_same_stream(stream: list[StreamItem]) -> None:
    assert generate_stream(5, CONFIG) == stream


def test_another_seed_gives_another_world_and_stream(stream: list[StreamItem]) -> None:
    assert build_world(6, WORLD) != build_world(5, WORLD)
    other = generate_stream(6, CONFIG)
    assert [i.transaction.id for i in other] != [i.transaction.id for i in stream]


def test_anomalies_come_only_after_the_warm_up(stream: list[StreamItem]) -> None:
    anomalies = [i for i in stream if i.is_anomaly]
    assert len(anomalies) >= 10
    assert all(i.transaction.transaction_date >= CONFIG.scored_from() for i in anomalies)
    assert {i.anomaly for i in anomalies} == {AnomalyKind.SPIKE, AnomalyKind.STABLE_JUMP}


def test_every_family_and_merchant_size_is_present(stream: list[StreamItem]) -> None:
    assert {i.family for i in stream} == set(DEFAULT_FAMILIES)
    assert {i.size for i in stream} == set(MerchantSize)
    assert len(DEFAULT_FAMILIES) >= 8


def test_a_world_can_hold_only_the_families_named() -> None:
    world = build_world(5, WorldConfig(families=("round_amounts", "pareto")))
    assert {m.family.name for m in world} == {"round_amounts", "pareto"}
    assert set(FAMILIES) > set(DEFAULT_FAMILIES)


def test_late_merchants_appear_only_in_the_last_days(stream: list[StreamItem]) -> None:
    late_start = WORLD.day_start(WORLD.days - WORLD.late_days)
    late = [i for i in stream if i.size is MerchantSize.LATE]
    assert late
    assert all(i.transaction.transaction_date >= late_start for i in late)


def test_small_merchants_sell_a_few_a_day(stream: list[StreamItem]) -> None:
    per_merchant = Counter(i.transaction.merchant for i in stream if not i.is_anomaly)
    sizes = {i.transaction.merchant: i.size for i in stream}
    small = [n for name, n in per_merchant.items() if sizes[name] is MerchantSize.SMALL]
    large = [n for name, n in per_merchant.items() if sizes[name] is MerchantSize.LARGE]
    assert max(small) < min(large)


def test_p_true_is_the_merchants_own_survival_at_that_moment(stream: list[StreamItem]) -> None:
    merchants = {m.name: m for m in build_world(5, WORLD)}
    for item in stream[::50]:
        family = merchants[item.transaction.merchant].family
        txn = item.transaction
        assert item.family == family.name
        assert item.p_true == family.survival(txn.amount, txn.transaction_date)


def test_anomalies_are_sized_against_the_merchant(stream: list[StreamItem]) -> None:
    merchants = {m.name: m for m in build_world(5, WORLD)}
    for item in (i for i in stream if i.is_anomaly):
        family = merchants[item.transaction.merchant].family
        is_fixed = isinstance(family, FixedPrice)
        assert (item.anomaly is AnomalyKind.STABLE_JUMP) == is_fixed
        assert item.multiple is not None
        median = family.median(item.transaction.transaction_date)
        assert float(item.transaction.amount) == pytest.approx(median * item.multiple, abs=0.01)
        assert item.p_true < 0.5  # at least twice the median: rarer than the median


def test_amounts_are_positive_cents_in_time_order(stream: list[StreamItem]) -> None:
    assert all(i.transaction.amount >= Decimal("0.01") for i in stream)
    assert all(
        i.transaction.amount == i.transaction.amount.quantize(Decimal("0.01")) for i in stream
    )
    dates = [i.transaction.transaction_date for i in stream]
    assert dates == sorted(dates)


def test_drifting_merchants_are_labelled(stream: list[StreamItem]) -> None:
    drifting = {i.transaction.merchant for i in stream if i.drifting}
    merchants = {m.name: m for m in build_world(5, WORLD)}
    assert drifting == {name for name, m in merchants.items() if m.drifting} & {
        i.transaction.merchant for i in stream
    }


def test_the_real_scorer_replays_the_stream_into_records() -> None:
    short = StreamConfig(
        world=WorldConfig(days=3, volume=0.03, late_days=1), anomaly_from_day=2, anomaly_share=0.05
    )
    items = generate_stream(1, short)
    scored = replay(items, ScoringConfig(), short.scored_from(), window=3)
    assert scored
    records = []
    for outcome in scored:
        assert isinstance(outcome.item, StreamItem)
        z = outcome.verdict.z_score
        records.append(record_of(outcome.item, outcome.verdict.severity, z or float("-inf")))
    assert all(isinstance(r, ScoredRecord) for r in records)
    assert sum(r.is_anomaly for r in records) == sum(i.is_anomaly for i in items)
    assert {r.family for r in records} <= set(DEFAULT_FAMILIES)
    assert all(r.segment in set(MerchantSize) for r in records)


def test_anomaly_days_must_lie_inside_the_stream() -> None:
    with pytest.raises(ValueError, match="anomaly_from_day"):
        generate_stream(1, StreamConfig(world=WorldConfig(days=5), anomaly_from_day=5))


def test_the_default_stream_is_the_issues_size() -> None:
    """45 days at about 3,000 a day: 135,000 transactions, the last 7 days evaluated."""
    config = StreamConfig()
    per_day = sum(m.per_day for m in build_world(1, config.world) if m.first_day == 0)
    assert 2_700 < per_day < 3_300
    assert config.world.days - config.anomaly_from_day == 7
    assert config.world.day_start(config.world.days) - config.scored_from() == timedelta(days=7)


def test_a_stream_is_written_as_json_lines_with_its_labels(tmp_path: Path) -> None:
    out = tmp_path / "stream.jsonl"
    main(["--seed", "2", "--volume", "0.05", "--out", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows
    first = rows[0]
    assert Transaction.model_validate({k: first[k] for k in Transaction.model_fields if k in first})
    labels = {"is_anomaly", "anomaly", "family", "size", "p_true", "multiple", "drifting"}
    assert labels <= set(first)
    assert any(row["is_anomaly"] for row in rows)


def test_a_live_replay_moves_the_stream_by_whole_days_and_posts_what_a_client_states(
    stream: list[StreamItem],
) -> None:
    last_day = WORLD.start + timedelta(days=400)
    moved = shift_days(stream, last_day)
    assert max(i.transaction.transaction_date for i in moved).date() == last_day
    for before, after in zip(stream, moved, strict=True):
        shift = after.transaction.transaction_date - before.transaction.transaction_date
        assert shift == timedelta(days=400 - (WORLD.days - 1))
        assert (after.is_anomaly, after.p_true) == (before.is_anomaly, before.p_true)
    body = body_of(moved[0])
    assert set(body) <= {"amount", "category", "merchant", "transaction_date", "currency"}
    # Amounts go as exact decimal strings, never through a float.
    assert Decimal(body["amount"]) == moved[0].transaction.amount
    assert isinstance(body["amount"], str)
