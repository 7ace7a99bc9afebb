"""The notifier's pure logic: signing, backoff, the circuit, matching, offsets, attempts, and
the retry loop with a fake sender and clock."""

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from ingest_gateway.webhooks.attempts import AttemptResult, Verdict, from_status
from ingest_gateway.webhooks.backoff import Backoff, retry_after_seconds
from ingest_gateway.webhooks.circuit import CircuitBreaker, CircuitState
from ingest_gateway.webhooks.delivery import Deliverer, Endpoint, Job, RetryPolicy
from ingest_gateway.webhooks.matching import Subscription, event_id, wants
from ingest_gateway.webhooks.metrics import NotifierMetrics
from ingest_gateway.webhooks.offsets import OffsetTracker, Ticket
from ingest_gateway.webhooks.settings import NotifierSettings
from ingest_gateway.webhooks.signing import signature_header, verify
from shared.settings import load_settings
from tests.webhook_helpers import make_alert

SECRET = "whsec-unit-0123456789"


@given(st.binary(max_size=2000), st.integers(min_value=0, max_value=2**40))
def test_a_signature_verifies_and_any_change_breaks_it(body: bytes, timestamp: int) -> None:
    header = signature_header(SECRET, timestamp, body)
    assert verify(SECRET, header, body, now=timestamp)
    assert not verify(SECRET, header, body + b" ", now=timestamp)
    assert not verify("another-secret-0123456", header, body, now=timestamp)
    assert not verify(SECRET, header, body, now=timestamp + 301)  # a replay, too late


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    """The documented recipe, computed independently."""
    body = b'{"event_id":"x"}'
    expected = hmac.new(SECRET.encode(), b"1764590000." + body, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, 1764590000, body) == f"t=1764590000,v1={expected}"
    assert not verify(SECRET, "garbage", body, now=1764590000)


@given(
    st.floats(min_value=0.001, max_value=10),
    st.floats(min_value=10, max_value=600),
    st.integers(min_value=0, max_value=5000),
)
def test_backoff_grows_to_its_cap_and_jitter_stays_below_the_ceiling(
    base: float, cap: float, retry: int
) -> None:
    backoff = Backoff(base, cap)
    assert backoff.ceiling(retry) <= backoff.ceiling(retry + 1) <= cap
    assert 0 <= backoff.delay(retry, lambda low, high: high) == backoff.ceiling(retry)
    assert backoff.delay(retry, lambda low, high: low) == 0  # full jitter: from zero
    assert backoff.ceiling(0) == min(base, cap)


def test_retry_after_reads_seconds_or_a_date() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_seconds(format_datetime(now - timedelta(days=1), usegmt=True), now) == 0
    for bad in (None, "", "soon", "-5", "1.5e3"):
        assert retry_after_seconds(bad, now) is None


def test_the_circuit_opens_after_the_threshold_and_probes_when_half_open() -> None:
    circuit = CircuitBreaker(failure_threshold=3, open_seconds=10)
    for now in (0.0, 1.0):
        circuit.record_failure(now)
        assert circuit.state(now) is CircuitState.CLOSED
    circuit.record_failure(2.0)
    assert circuit.state(2.0) is CircuitState.OPEN
    assert circuit.wait_seconds(5.0) == 7.0
    assert circuit.state(12.0) is CircuitState.HALF_OPEN
    assert circuit.wait_seconds(12.0) == 0
    circuit.record_failure(12.0)  # the probe failed: open again, at once
    assert circuit.state(12.5) is CircuitState.OPEN
    circuit.record_success()
    assert circuit.state(12.5) is CircuitState.CLOSED
    assert circuit.failures == 0


@given(st.lists(st.booleans(), max_size=60), st.integers(min_value=1, max_value=8))
def test_the_circuit_opens_exactly_after_threshold_consecutive_failures(
    outcomes: list[bool], threshold: int
) -> None:
    circuit, streak = CircuitBreaker(threshold, open_seconds=1e9), 0
    for ok in outcomes:
        if circuit.state(0) is CircuitState.CLOSED:
            circuit.record_success() if ok else circuit.record_failure(0)
            streak = 0 if ok else streak + 1
        assert (circuit.state(0) is CircuitState.OPEN) == (streak >= threshold)


def subscription(**fields: object) -> Subscription:
    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "url": "https://x.example/",
        "min_severity": "medium",
    }
    return Subscription(**(base | fields))  # type: ignore[arg-type]


def test_filters_severity_category_merchant_and_never_a_suppressed_alert() -> None:
    high = subscription(min_severity="high")
    assert not wants(high, make_alert(severity="medium"))
    assert wants(high, make_alert(severity="high"))
    assert wants(high, make_alert(severity="critical"))
    travel = subscription(category="travel")
    assert wants(travel, make_alert(category="travel"))
    assert not wants(travel, make_alert(category="food"))
    shop = subscription(merchant="Shop", category="retail")
    assert wants(shop, make_alert(merchant="Shop", category="retail"))
    assert not wants(shop, make_alert(merchant="Shop", category="travel"))
    assert not wants(subscription(), make_alert(suppressed=True))


def test_event_ids_are_stable_per_alert_and_subscription() -> None:
    alert, one, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert event_id(alert, one) == event_id(alert, one)
    assert len({event_id(alert, one), event_id(alert, other), event_id(uuid.uuid4(), one)}) == 3


@given(st.permutations(list(range(12))), st.integers(min_value=0, max_value=12))
def test_only_a_finished_prefix_of_a_partition_is_committed(order: list[int], done: int) -> None:
    tracker, partition = OffsetTracker(), TopicPartition("alerts", 0)
    tickets = [tracker.add(partition, offset, 1) for offset in range(12)]
    for offset in order[:done]:
        tickets[offset].finish()
    finished = set(order[:done])
    prefix = next((o for o in range(12) if o not in finished), 12)
    assert tracker.committable() == ({partition: prefix} if prefix else {})
    assert tracker.in_flight() == 12 - prefix


def test_a_record_with_several_deliveries_waits_for_all_and_one_with_none_is_done() -> None:
    tracker, partition = OffsetTracker(), TopicPartition("alerts", 1)
    ticket = tracker.add(partition, 5, 2)
    tracker.add(partition, 6, 0)  # matched no subscription
    ticket.finish()
    assert tracker.committable() == {}
    ticket.finish()
    assert tracker.committable() == {partition: 7}


def test_a_delivery_of_a_revoked_partition_never_counts_for_its_new_reading() -> None:
    tracker, partition = OffsetTracker(), TopicPartition("alerts", 2)
    old = tracker.add(partition, 0, 1)
    tracker.forget([partition])  # revoked, then assigned back and read again
    tracker.add(partition, 0, 1)
    old.finish()  # the old reading's delivery ends
    assert tracker.committable() == {}
    assert tracker.in_flight() == 1


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (301, Verdict.GIVE_UP),
        (400, Verdict.GIVE_UP),
        (404, Verdict.GIVE_UP),
        (410, Verdict.GIVE_UP),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_which_answers_are_retried(status: int, verdict: Verdict) -> None:
    assert from_status(status, None).verdict is verdict


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedSender:
    def __init__(self, results: list[AttemptResult], clock: FakeClock) -> None:
        self.results, self.clock, self.calls = results, clock, 0

    async def attempt(
        self, subscription: Subscription, event_id: str, body: bytes
    ) -> AttemptResult:
        self.calls += 1
        self.clock.now += 0.01
        return self.results[min(self.calls, len(self.results)) - 1]


class Letters:
    def __init__(self) -> None:
        self.kept: list[dict[str, object]] = []

    async def record(self, letter: dict[str, object], event: bytes) -> None:
        self.kept.append(letter)


def job() -> Job:
    partition = TopicPartition("a", 0)
    return Job(uuid.uuid4(), b"{}", uuid.uuid4(), uuid.uuid4(), partition, 0, 0.0, Ticket(1))


async def run_delivery(
    results: list[AttemptResult], max_retry: float = 60, threshold: int = 5
) -> tuple[str, ScriptedSender, Letters, FakeClock]:
    clock = FakeClock()
    sender, letters = ScriptedSender(results, clock), Letters()
    deliverer = Deliverer(
        sender,
        letters,
        NotifierMetrics.create(CollectorRegistry()),
        RetryPolicy(Backoff(1, 8), max_retry),
        clock=clock,
        sleep=clock.sleep,
        draw=lambda low, high: high,
    )
    endpoint = Endpoint(subscription(), CircuitBreaker(threshold, open_seconds=30))
    outcome = await deliverer.deliver(endpoint, job())
    return outcome, sender, letters, clock


async def test_500_forever_is_retried_until_the_deadline_then_dead_lettered() -> None:
    outcome, sender, letters, clock = await run_delivery([from_status(500, None)], max_retry=120)
    assert outcome == "dead_lettered"
    [letter] = letters.kept
    assert "HTTP 500" in str(letter["last_error"])
    assert letter["attempts"] == sender.calls
    assert clock.now <= 120
    # 1, 2, 4 s, then the circuit opens (5 failures) and probes every 30 s.
    assert clock.sleeps[:4] == [1, 2, 4, 8]
    assert sender.calls < 10


async def test_a_4xx_is_dead_lettered_after_one_attempt() -> None:
    outcome, sender, letters, _ = await run_delivery([from_status(422, None)])
    assert (outcome, sender.calls, letters.kept[0]["last_status"]) == ("dead_lettered", 1, 422)


async def test_a_429_waits_at_least_retry_after() -> None:
    outcome, sender, _, clock = await run_delivery([from_status(429, 20.0), from_status(200, None)])
    assert (outcome, sender.calls) == ("delivered", 2)
    assert clock.sleeps == [20.0]


async def test_a_failure_then_success_is_delivered_without_a_dead_letter() -> None:
    results = [from_status(503, None), from_status(502, None), from_status(200, None)]
    outcome, sender, letters, _ = await run_delivery(results)
    assert (outcome, sender.calls, letters.kept) == ("delivered", 3, [])


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBHOOK_TIMEOUT_SECONDS", "soon"),
        ("WEBHOOK_MAX_RETRY_SECONDS", "0"),
        ("WEBHOOK_START_FROM", "yesterday"),
        ("WEBHOOK_ALLOW_PRIVATE", "perhaps"),
        ("METRICS_PORT", "99999"),
        ("WEBHOOK_BACKOFF_CAP_SECONDS", "0.5"),  # below the base (1 s)
    ],
)
def test_a_bad_notifier_setting_stops_it_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@localhost/db")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exit_info:
        load_settings(NotifierSettings)
    assert exit_info.value.code == 2
    assert variable in capsys.readouterr().err
