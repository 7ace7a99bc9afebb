"""API keys: presented as `Authorization: Bearer <key>` or `X-API-Key`, stored only hashed."""

import hashlib
import hmac
import re

ANONYMOUS = "anonymous"
# Keys are visible ASCII (token_urlsafe makes them); anything else cannot match a stored hash.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class MalformedCredential(ValueError):
    """A credential header that cannot hold a key (e.g. non-UTF-8 bytes): names the header,
    never the value."""

    def __init__(self, header: str) -> None:
        super().__init__(header)
        self.header = header


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _presented(authorization: str | None, api_key: str | None) -> tuple[str, str] | None:
    """(header, key) of the credential the request presents, if any."""
    if authorization and authorization.lower().startswith("bearer "):
        return "Authorization", authorization[7:].strip()
    if api_key:
        return "X-API-Key", api_key
    return None


class ApiKeys:
    def __init__(self, hashes: dict[str, str], *, disabled: bool = False) -> None:
        self._hashes = hashes
        self._disabled = disabled

    def identify(self, authorization: str | None, api_key: str | None) -> str | None:
        """The key's name when the request carries a valid key (or auth is off), else None.

        Raises MalformedCredential when the presented key is not visible ASCII."""
        presented = _presented(authorization, api_key)
        if presented and presented[1]:
            header, key = presented
            if not _VISIBLE_ASCII.fullmatch(key):
                raise MalformedCredential(header)
            digest = key_digest(key)
            # Compare against every hash in constant time: no early exit leaks which matched.
            matches = [
                name for known, name in self._hashes.items() if hmac.compare_digest(known, digest)
            ]
            if matches:
                return matches[0]
        return ANONYMOUS if self._disabled else None
