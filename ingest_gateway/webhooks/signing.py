"""Signing deliveries: HMAC-SHA256 over `"<timestamp>.<body>"`, as Stripe and GitHub do.

The header reads `Jalytics-Signature: t=1764590000,v1=<hex digest>`. A receiver recomputes the
digest over the raw body with the shared secret, compares in constant time, and refuses a
timestamp too far from its clock (a replayed old delivery).
"""

import hashlib
import hmac

DEFAULT_TOLERANCE_SECONDS = 300


def digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={digest(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` signs `body` with `secret` at a time within `tolerance` of `now`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), digest(secret, timestamp, body))
