"""`json.dumps(value)`'s text (its default settings) at half its cost for a flat dict.

json.dumps builds a new encoder on every call; here the stdlib's C encoder is made once and
reused (no circular-reference check: callers pass flat dicts of plain values). Used where a
JSON text is made per request or per log line (the access log, the 201 body)."""

import json
import json.encoder
from collections.abc import Callable, Mapping

_Encode = Callable[[Mapping[str, object], int], list[str] | tuple[str, ...]]


def _c_encoder() -> _Encode | None:
    # json.encoder's C accelerator (None in a Python built without it; not in typeshed).
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        return None
    default = json.JSONEncoder().default
    # (markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys,
    # allow_nan): json.dumps's defaults, without the circular check's markers.
    encode: _Encode = c_make_encoder(
        None, default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return encode


_encode = _c_encoder()


def json_text(value: Mapping[str, object]) -> str:
    """The text json.dumps(value) gives, with json.dumps's defaults."""
    if _encode is None:
        return json.dumps(value)
    return "".join(_encode(value, 0))
