"""What one delivery attempt's outcome means: delivered, retry later, or give up now."""

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class AttemptResult:
    verdict: Verdict
    # For metrics: 2xx, 3xx, 4xx, 429, 5xx, timeout, connection_error, refused.
    result: str
    error: str = ""
    status: int | None = None
    retry_after: float | None = None

    @property
    def receiver_failed(self) -> bool:
        """A failure of the receiver (counts towards opening its circuit); a 4xx or a 429
        is an answer from a receiver that is up."""
        return self.verdict is Verdict.RETRY and self.result != "429"


def from_status(status: int, retry_after: float | None) -> AttemptResult:
    """2xx delivered; 429 and 5xx retried (429 after Retry-After); any other 4xx, or a
    redirect (never followed), given up at once: sending it again would change nothing."""
    if 200 <= status < 300:
        return AttemptResult(Verdict.DELIVERED, "2xx", status=status)
    if status == 429:
        return AttemptResult(Verdict.RETRY, "429", f"HTTP {status}", status, retry_after)
    if status >= 500:
        return AttemptResult(Verdict.RETRY, "5xx", f"HTTP {status}", status)
    if 300 <= status < 400:
        return AttemptResult(
            Verdict.GIVE_UP, "3xx", f"HTTP {status} (redirects are not followed)", status
        )
    return AttemptResult(Verdict.GIVE_UP, "4xx", f"HTTP {status} (not retried)", status)


def from_exception(error: BaseException, refused: bool) -> AttemptResult:
    if refused:
        return AttemptResult(Verdict.GIVE_UP, "refused", str(error))
    if isinstance(error, TimeoutError):
        return AttemptResult(Verdict.RETRY, "timeout", "timed out")
    return AttemptResult(Verdict.RETRY, "connection_error", f"{type(error).__name__}: {error}")
