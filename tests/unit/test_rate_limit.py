"""The token bucket, with time passed in."""

from hypothesis import given
from hypothesis import strategies as st

from ingest_gateway.rate_limit import RateLimiter, TokenBucket


def test_seed_defaults_allow_a_burst_of_ten_then_five_per_second() -> None:
    bucket = TokenBucket.full(rate=5, burst=10, now=0.0)
    assert all(bucket.try_take(0.0) == 0 for _ in range(10))
    wait = bucket.try_take(0.0)
    assert wait == 0.2  # one token comes back every 1/5 s
    assert bucket.try_take(0.2) == 0
    assert bucket.try_take(0.2) > 0


def test_tokens_never_exceed_the_burst() -> None:
    bucket = TokenBucket.full(rate=5, burst=10, now=0.0)
    bucket.try_take(1000.0)
    assert bucket.tokens == 9


def test_a_clock_going_backwards_grants_nothing() -> None:
    bucket = TokenBucket.full(rate=1, burst=1, now=10.0)
    assert bucket.try_take(10.0) == 0
    assert bucket.try_take(5.0) > 0


@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    burst=st.integers(min_value=1, max_value=100),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_admitted_requests_never_exceed_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket.full(rate=rate, burst=burst, now=0.0)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        if bucket.try_take(now) == 0:
            admitted += 1
    assert admitted <= burst + rate * now + 1e-6


@given(rate=st.floats(min_value=0.1, max_value=1000), burst=st.integers(min_value=1, max_value=50))
def test_waiting_the_advised_time_is_enough(rate: float, burst: int) -> None:
    bucket = TokenBucket.full(rate=rate, burst=burst, now=0.0)
    while (wait := bucket.try_take(0.0)) == 0:
        pass
    assert bucket.try_take(wait + 1e-9) == 0


def test_past_max_keys_only_full_buckets_are_forgotten() -> None:
    """Keys from the network (client addresses) cannot grow the limiter without bound, and a
    key still paying for its burst is never forgotten (it would get a full bucket again)."""
    limiter = RateLimiter(0.1, 2.0, TokenBucket.full(1e9, 1e9, 0.0), max_keys=3)
    for _ in range(2):
        limiter.try_take("busy", 0.0)
    limiter.try_take("idle-1", 0.0, cost=0)
    limiter.try_take("idle-2", 0.0, cost=0)
    assert limiter.try_take("new", 5.0) == 0
    assert set(limiter.buckets) == {"busy", "new"}
    assert limiter.try_take("busy", 5.0) > 0  # still limited: not forgotten
