"""The detector's own metrics: bounded merchant labels, baseline age, consumer lag, and the
series that exist before their first event (so that `increase()` sees that event)."""

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faust.types import TP
from prometheus_client import CollectorRegistry

from benchmarks.support import index
from detector_worker.app import batch_context
from detector_worker.metrics import (
    INPUT_LABEL_LIMIT,
    OTHER_MERCHANTS,
    CappedCounter,
    DetectorMetrics,
    baseline_age_seconds,
    consumer_lag,
    observe_many,
)
from detector_worker.records import RawRecord
from detector_worker.runtime import ConsumerLagProbe, DetectorRuntime
from detector_worker.settings import DetectorSettings
from schemas import Baseline, BaselineScope, ScopeKind, encode_model

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def lag_series(registry: CollectorRegistry) -> dict[str, float]:
    return {
        s.labels["partition"]: s.value
        for family in registry.collect()
        if family.name == "detector_consumer_lag"
        for s in family.samples
    }


def baseline(name: str, computed_at: datetime) -> Baseline:
    scope = BaselineScope(kind=ScopeKind.CATEGORY, name=name, currency="USD")
    return Baseline(
        id=uuid4(),
        scope=scope,
        count=50,
        mean=100,
        stddev=10,
        window_days=30,
        computed_at=computed_at,
    )


def test_merchants_past_the_limit_share_one_series() -> None:
    registry = CollectorRegistry()
    counter = DetectorMetrics.create(registry).transactions_by_merchant.counter
    merchants = CappedCounter(counter, "merchant", limit=2)
    for name in ("a", "b", "c", "a", "d", "b"):
        merchants.inc(name)
    counts = {
        m: sample(registry, "transactions_by_merchant_total", merchant=m)
        for m in ("a", "b", "c", "d", OTHER_MERCHANTS)
    }
    # Admitted merchants keep their own series after the limit is reached.
    assert counts == {"a": 2.0, "b": 2.0, "c": None, "d": None, OTHER_MERCHANTS: 2.0}


def test_f10_categories_are_capped_like_merchants() -> None:
    # At 37aed69 six batch requests made 2,700 category series (13.5 KB -> 408 KB /metrics).
    registry = CollectorRegistry()
    metrics = DetectorMetrics.create(registry)
    for number in range(INPUT_LABEL_LIMIT + 500):
        metrics.transactions.labels(category=f"c{number}").inc()
        metrics.transactions_by_merchant.inc(f"m{number}")
    for name, label in (
        ("transactions_total", "category"),
        ("transactions_by_merchant_total", "merchant"),
    ):
        series = [s for m in registry.collect() for s in m.samples if s.name == name]
        assert len(series) == INPUT_LABEL_LIMIT + 1, name
        assert sample(registry, name, **{label: OTHER_MERCHANTS}) == 500.0


def test_capped_series_are_kept_only_for_admitted_values() -> None:
    # The series are cached per value: a flood of new names must not grow the cache.
    merchants = CappedCounter(
        DetectorMetrics.create(CollectorRegistry()).transactions.counter, "category", limit=3
    )
    for number in range(1000):
        merchants.inc(f"m{number}")
    assert sorted(merchants._series) == sorted(["m0", "m1", "m2", OTHER_MERCHANTS])


def histogram_samples(registry: CollectorRegistry, name: str) -> list[tuple[str, object, float]]:
    return [
        (s.name, sorted(s.labels.items()), s.value)
        for family in registry.collect()
        if family.name == name
        for s in family.samples
        if not s.name.endswith("_created")
    ]


def test_observe_many_gives_the_samples_of_one_observe_per_value() -> None:
    # Bounds themselves (a value equal to a bound is in that bucket), between them, past the
    # last finite one, zero, and a run of equal values.
    values = [0.0, 0.001, 0.0011, 0.005, 0.0049, 0.25, 0.26, 30.0, 31.0, 1e6] + [0.1] * 5
    one_by_one, many = CollectorRegistry(), CollectorRegistry()
    single = DetectorMetrics.create(one_by_one).end_to_end_latency
    for value in values:
        single.observe(value)
    observe_many(DetectorMetrics.create(many).end_to_end_latency, values)
    observe_many(DetectorMetrics.create(CollectorRegistry()).end_to_end_latency, [])
    name = "detector_end_to_end_latency_seconds"
    assert histogram_samples(many, name) == histogram_samples(one_by_one, name)


def test_baseline_age_is_that_of_the_newest_baseline() -> None:
    table = index((baseline("food", NOW - timedelta(minutes=5)), baseline("travel", NOW)))
    assert baseline_age_seconds(table, NOW + timedelta(seconds=42)) == 42.0
    assert math.isnan(baseline_age_seconds({}, NOW))


def test_the_runtime_exports_the_age_of_its_table_on_each_scrape() -> None:
    registry = CollectorRegistry()
    settings = DetectorSettings(_env_file=None, database_url="postgresql://u:p@db/jalytics")
    runtime = DetectorRuntime(settings, registry)
    empty = sample(registry, "detector_baseline_age_seconds")
    assert empty is not None and math.isnan(empty)
    fresh = baseline("food", datetime.now(UTC))
    runtime.table.apply(fresh.scope.key(), encode_model(fresh))
    age = sample(registry, "detector_baseline_age_seconds")
    assert age is not None and 0 <= age < 60


def test_consumer_lag_counts_what_is_not_committed() -> None:
    # Partition 2 has no committed offset yet (-1): it is read from its start.
    assert consumer_lag({0: 10, 1: 5, 2: 7}, {0: 4, 1: 5, 2: -1}) == {0: 6, 1: 0, 2: 7}
    assert consumer_lag({0: 10}, {}) == {0: 10}


def test_the_series_alerts_count_on_exist_from_the_start() -> None:
    registry = CollectorRegistry()
    DetectorMetrics.create(registry)
    for suppressed in ("false", "true"):
        assert sample(registry, "anomalies_total", suppressed=suppressed) == 0.0
        for severity in ("medium", "high", "critical"):
            labels = {"severity": severity, "suppressed": suppressed}
            assert sample(registry, "anomalies_by_severity_total", **labels) == 0.0
    for reason in ("empty_value", "malformed_json", "unsupported_version", "invalid_schema"):
        assert sample(registry, "detector_dead_letters_total", reason=reason) == 0.0
    for stage in ("persist", "publish"):
        assert sample(registry, "detector_retries_total", stage=stage) == 0.0
    assert sample(registry, "process_start_time_seconds") is not None


class FakeConsumer:
    """Faust's consumer as the probe sees it: an assignment and end offsets."""

    def __init__(self, ends: Mapping[TP, int]) -> None:
        self.ends = dict(ends)

    def assignment(self) -> set[TP]:
        return set(self.ends)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        return {tp: self.ends[tp] for tp in partitions}


class FakeAdmin:
    """The broker's committed offsets of one group."""

    def __init__(self, group: str, committed: Mapping[TopicPartition, int]) -> None:
        self.group = group
        self.committed = dict(committed)

    async def list_consumer_group_offsets(
        self,
        group_id: str,
        group_coordinator_id: int | None = None,
        partitions: list[TopicPartition] | None = None,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        assert group_id == self.group
        return {tp: OffsetAndMetadata(self.committed.get(tp, -1), "") for tp in partitions or []}


async def test_the_lag_probe_reports_the_owned_partitions_only() -> None:
    registry = CollectorRegistry()
    gauge = DetectorMetrics.create(registry).consumer_lag
    admin = FakeAdmin("detectors", {TopicPartition("transactions", 0): 40})
    probe = ConsumerLagProbe(admin, "detectors", "transactions", gauge)
    ends = {TP("transactions", 0): 100, TP("transactions", 1): 8, TP("baselines", 0): 999}

    await probe.refresh(FakeConsumer(ends))
    assert lag_series(registry) == {"0": 60.0, "1": 8.0}

    # A rebalance moved partition 0 to another process: it reports it from now on, not us.
    await probe.refresh(FakeConsumer({TP("transactions", 1): 9}))
    assert lag_series(registry) == {"1": 9.0}


def test_a_failed_batch_is_logged_with_its_offsets_and_transaction_ids() -> None:
    records = [
        RawRecord("transactions", 0, 7, b"id-a", b"{}"),
        RawRecord("transactions", 1, 3, None, b"{}"),
        RawRecord("transactions", 0, 9, b"id-b", b"{}"),
    ]
    assert batch_context(records) == {
        "offsets": {"transactions/0": [7, 9], "transactions/1": [3, 3]},
        "records": 3,
        "transaction_ids": ["id-a", "id-b"],
    }
