"""A per-subscription circuit breaker: stop hammering a receiver that keeps failing.

Closed: every delivery is attempted. After `failure_threshold` consecutive failures it opens:
nothing is sent for `open_seconds`; then it is half-open and lets one probe through, which
closes it on success and opens it again on failure. Alerts are not dropped meanwhile: they wait
in the subscription's queue. Time is passed in (monotonic seconds).
"""

from enum import IntEnum


class CircuitState(IntEnum):
    # The values are the gauge's (webhook_circuit_state).
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(self, failure_threshold: int, open_seconds: float) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.failures = 0
        self.opened_at: float | None = None

    def state(self, now: float) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if now - self.opened_at >= self.open_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def wait_seconds(self, now: float) -> float:
        """How long until the next attempt may be made (0: now)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.open_seconds - now)

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self, now: float) -> None:
        self.failures += 1
        # A failed probe (half-open) re-opens at once; a closed circuit opens at the threshold.
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = now
