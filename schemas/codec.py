"""JSON decoding that keeps money exact.

Pydantic's JSON parser reads a JSON number through a float, which silently rounds
amounts (0.1000000000000000055 becomes 0.1, large values lose cents). Every wire
payload is therefore decoded here with ``parse_float=Decimal`` and validated in
Python mode afterwards.
"""

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NoReturn

from pydantic import BaseModel

# Deeper documents are rejected before json recursion gets anywhere near its limit.
MAX_NESTING = 32


class MalformedJson(ValueError):
    """The payload is not a JSON document we accept (syntax, NaN/Infinity, nesting, encoding)."""


def _reject_constant(name: str) -> NoReturn:
    raise MalformedJson(f"{name} is not a valid JSON number")


def _nesting_depth(raw: str) -> int:
    if raw.count("[") + raw.count("{") <= MAX_NESTING:
        # Cannot nest deeper than it has openers: skips the character loop below (the most
        # expensive step of decoding; docs/performance.md) for every ordinary document.
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for char in raw:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"amount": "1", "amount": "9999"} means one amount to one reader and another to the
    # next (RFC 8259 leaves it open; I-JSON, RFC 7493, forbids it): refused, never guessed.
    # About 1 µs a transaction over the plain dict.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise MalformedJson(f"duplicate key {_first_repeated(key for key, _ in pairs)[:64]!r}")
    return document


def _first_repeated(keys: Iterable[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return ""


# One decoder for all documents (json.loads builds a new one per call when given hooks).
_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
)


def decode_json(raw: bytes | str) -> Any:
    """Decode a JSON document with exact decimals; raise MalformedJson on anything else."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"body is not UTF-8: {exc.reason}") from exc
    # A byte-order mark that some editors and Windows tools put first: RFC 8259 lets a
    # reader ignore it, and "Expecting value at column 1" would not tell the sender why.
    text = text.removeprefix("\ufeff")
    if _nesting_depth(text) > MAX_NESTING:
        raise MalformedJson(f"JSON nested deeper than {MAX_NESTING} levels")
    try:
        return _DECODER.decode(text)
    except MalformedJson:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except ValueError as exc:
        # e.g. an integer of thousands of digits (Python refuses to convert it): a poison
        # pill that must become a clear rejection, not a crash.
        raise MalformedJson(f"unreadable JSON value: {str(exc)[:120]}") from exc


def encode_model(model: BaseModel) -> bytes:
    """The one way a message value is serialised (decimals become strings, times ISO 8601)."""
    return model.model_dump_json().encode("utf-8")
