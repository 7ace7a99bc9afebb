"""API keys: presented as `Authorization: Bearer <key>` or `X-API-Key`, stored only hashed.

Each key holds scopes: `ingest` (post transactions and reversals), `read` (read them and their
alerts), `analyst` (read, and work alerts and suppressions), `admin` (everything, webhooks
included). An ingest key cannot resolve an alert; a key configured without scopes keeps the
rights every key had before scopes existed: ingest and read.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal, get_args

Scope = Literal["ingest", "read", "analyst", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
# What holding a scope grants: analyst implies read; admin implies all.
_GRANTS: dict[Scope, frozenset[Scope]] = {
    "ingest": frozenset({"ingest"}),
    "read": frozenset({"read"}),
    "analyst": frozenset({"analyst", "read"}),
    "admin": frozenset(SCOPES),
}
DEFAULT_SCOPES: frozenset[Scope] = frozenset({"ingest", "read"})

ANONYMOUS = "anonymous"
# Keys are visible ASCII (token_urlsafe makes them); anything else cannot match a stored hash.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class MalformedCredential(ValueError):
    """A credential header that cannot hold a key (e.g. non-UTF-8 bytes): names the header,
    never the value."""

    def __init__(self, header: str) -> None:
        super().__init__(header)
        self.header = header


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the key's name and everything its scopes grant."""

    name: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes


def granted(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """Every scope the given ones grant (admin implies all, analyst implies read)."""
    return frozenset().union(*(_GRANTS[scope] for scope in scopes))


_EVERYTHING = Caller(ANONYMOUS, frozenset(SCOPES))


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
    def __init__(
        self,
        hashes: dict[str, str],
        *,
        disabled: bool = False,
        scopes: dict[str, frozenset[Scope]] | None = None,
    ) -> None:
        """hashes: sha256 hex digest -> key name; scopes: key name -> its configured scopes
        (DEFAULT_SCOPES for a name not given)."""
        self._hashes = hashes
        self._disabled = disabled
        self._callers = {
            name: Caller(name, granted((scopes or {}).get(name, DEFAULT_SCOPES)))
            for name in hashes.values()
        }
        # Keys seen to be valid, so a key is hashed once, not on every request. Only
        # configured keys get in, so it holds at most one entry per configured key. A dict
        # lookup reveals nothing through its timing: the string hash is salted per process.
        self._recognised: dict[str, Caller] = {}

    def identify(self, authorization: str | None, api_key: str | None) -> Caller | None:
        """The caller when the request carries a valid key (or auth is off: then with every
        scope), else None.

        Raises MalformedCredential when the presented key is not visible ASCII."""
        presented = _presented(authorization, api_key)
        if presented and presented[1]:
            header, key = presented
            if (known := self._recognised.get(key)) is not None:
                return known
            if not _VISIBLE_ASCII.fullmatch(key):
                raise MalformedCredential(header)
            caller = self.holder(key)
            if caller is not None:
                self._recognised[key] = caller
                return caller
        return _EVERYTHING if self._disabled else None

    def holder(self, key: str) -> Caller | None:
        """The caller holding this configured key, else None (even with auth disabled: the
        inbox's sign-in accepts real keys only)."""
        digest = key_digest(key)
        # Compare against every hash in constant time: no early exit leaks which matched.
        matches = [
            name for known, name in self._hashes.items() if hmac.compare_digest(known, digest)
        ]
        return self._callers[matches[0]] if matches else None

    def named(self, name: str) -> Caller | None:
        """The caller of the key configured under this name, None once it is removed."""
        return self._callers.get(name)
