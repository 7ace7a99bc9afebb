"""API keys hold scopes (auth.py): parsed from API_KEYS_SHA256, and what each grants."""

import hashlib

import pytest
from pydantic import ValidationError

from ingest_gateway.auth import DEFAULT_SCOPES, SCOPES, ApiKeys, granted
from ingest_gateway.settings import GatewaySettings

DIGEST = "a" * 64
OTHER = "b" * 64


def _settings(keys: str) -> GatewaySettings:
    return GatewaySettings(database_url="postgresql://u:p@h/db", api_keys_sha256=keys)


def test_a_key_names_its_scopes_after_its_hash_and_one_without_keeps_ingest_and_read() -> None:
    settings = _settings(f"ops:{DIGEST}:analyst+admin, feed:{OTHER}")
    assert settings.api_key_hashes() == {DIGEST: "ops", OTHER: "feed"}
    assert settings.api_key_scopes() == {"ops": frozenset({"analyst", "admin"})}
    assert {"ingest", "read"} == DEFAULT_SCOPES


def test_a_key_name_may_hold_a_colon() -> None:
    settings = _settings(f"team:eu:{DIGEST}:read")
    assert settings.api_key_hashes() == {DIGEST: "team:eu"}
    assert settings.api_key_scopes() == {"team:eu": frozenset({"read"})}


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        (f"ops:{DIGEST}:root", "unknown scope 'root'"),
        (f"ops:{DIGEST}:", "unknown scope ''"),
        (f"ops:{DIGEST}:read+", "unknown scope ''"),
        ("ops:not-a-digest", "name:<64 lowercase hex sha256>"),
        (f"{DIGEST}", "name:<64 lowercase hex sha256>"),
        (f"ops:{DIGEST},ops:{OTHER}", "each key name may appear once"),
    ],
)
def test_a_bad_entry_is_refused_with_what_is_wrong(keys: str, named: str) -> None:
    with pytest.raises(ValidationError, match="api_keys_sha256") as refused:
        _settings(keys)
    assert named in str(refused.value)


def test_admin_grants_everything_and_analyst_grants_read_but_not_ingest() -> None:
    assert granted(frozenset({"admin"})) == frozenset(SCOPES)
    assert granted(frozenset({"analyst"})) == {"analyst", "read"}
    assert granted(frozenset({"ingest"})) == {"ingest"}


def test_the_caller_carries_its_granted_scopes_and_open_auth_grants_all() -> None:
    key = "k-0123456789"
    digest = hashlib.sha256(key.encode()).hexdigest()
    keys = ApiKeys({digest: "ops"}, scopes={"ops": frozenset({"analyst"})})
    caller = keys.identify(f"Bearer {key}", None)
    assert caller is not None
    assert (caller.name, caller.may("read"), caller.may("ingest")) == ("ops", True, False)
    assert ApiKeys({}, disabled=True).identify(None, None) == ApiKeys({}, disabled=True).identify(
        None, None
    )
    anonymous = ApiKeys({}, disabled=True).identify(None, None)
    assert anonymous is not None and all(anonymous.may(scope) for scope in SCOPES)


def test_a_recognised_key_stays_recognised_and_nothing_else_is_let_in() -> None:
    key = "k-0123456789"
    keys = ApiKeys({hashlib.sha256(key.encode()).hexdigest(): "ops"})
    first = keys.identify(f"Bearer {key}", None)
    assert first is not None and keys.identify(None, key) is first
    # After a valid key was seen: a near miss, another key, none at all are still refused.
    assert keys.identify(f"Bearer {key}x", None) is None
    assert keys.identify(None, key[:-1]) is None
    assert keys.identify(None, None) is None
