"""API keys: presented as `Authorization: Bearer <key>` or `X-API-Key`, stored only hashed."""

import hashlib
import hmac

ANONYMOUS = "anonymous"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    def __init__(self, hashes: dict[str, str], *, disabled: bool = False) -> None:
        self._hashes = hashes
        self._disabled = disabled

    def identify(self, authorization: str | None, api_key: str | None) -> str | None:
        """The key's name when the request carries a valid key (or auth is off), else None."""
        presented = api_key
        if authorization and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        if presented:
            digest = key_digest(presented)
            # Compare against every hash in constant time: no early exit leaks which matched.
            matches = [
                name for known, name in self._hashes.items() if hmac.compare_digest(known, digest)
            ]
            if matches:
                return matches[0]
        return ANONYMOUS if self._disabled else None
