"""Token-bucket rate limiting, pure: the caller passes the time."""

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one request costs one token."""

    rate: float
    burst: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> "TokenBucket":
        return cls(rate=rate, burst=burst, tokens=burst, updated_at=now)

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated_at = max(self.updated_at, now)

    def wait_for(self, cost: float) -> float:
        """Seconds until `cost` tokens are there (0 when they are now); call after refill."""
        return 0.0 if self.tokens >= cost else (cost - self.tokens) / self.rate

    def try_take(self, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens if there are enough and return 0; else return seconds to wait."""
        self.refill(now)
        wait = self.wait_for(cost)
        if wait == 0:
            self.tokens -= cost
        return wait


def retry_after(wait: float) -> str:
    """A Retry-After value for `wait` seconds: whole seconds, at least 1, never too early."""
    return str(max(1, round(wait + 0.5)))


@dataclass
class RateLimiter:
    """A bucket per key (an API key, a client address) inside one global bucket. A request
    takes a token from both or from neither, so a refused request does not eat another
    client's budget. Past `max_keys` keys, the full buckets are forgotten (a full bucket is
    what a new key gets): keys from the network cannot grow it without bound."""

    rate: float
    burst: float
    global_bucket: TokenBucket
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    max_keys: int = 100_000

    def try_take(self, key: str, now: float, cost: float = 1.0) -> float:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = self.buckets[key] = TokenBucket.full(self.rate, self.burst, now)
        bucket.refill(now)
        self.global_bucket.refill(now)
        wait = max(bucket.wait_for(cost), self.global_bucket.wait_for(cost))
        if wait == 0:
            bucket.tokens -= cost
            self.global_bucket.tokens -= cost
        return wait

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self.buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.burst:
                del self.buckets[key]
