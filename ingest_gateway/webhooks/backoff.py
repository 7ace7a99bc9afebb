"""Retry delays: exponential backoff with full jitter, and a receiver's Retry-After."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

# random.uniform's shape: a draw from [low, high].
Draw = Callable[[float, float], float]


@dataclass(frozen=True)
class Backoff:
    """The n-th retry waits a uniform draw from [0, min(cap, base * 2**n)] ("full jitter"):
    receivers recovering from an outage are not hit by every sender at the same instant."""

    base_seconds: float
    cap_seconds: float

    def ceiling(self, retry: int) -> float:
        # 2**n overflows a float for n > 1023: the cap is reached long before.
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(retry, 64))

    def delay(self, retry: int, draw: Draw) -> float:
        return draw(0.0, self.ceiling(retry))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
