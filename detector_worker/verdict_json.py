"""A verdict's JSON with its baseline's JSON made once per baseline, not once per verdict.

Most verdicts name a baseline (a nested model of about sixty numbers with its tail), and
serialising it was two thirds of encoding a verdict: 5.0 µs a verdict, 2.1 µs with the
baseline's JSON reused (docs/performance.md). The bytes are those `encode_model` gives.
"""

from schemas import Baseline, Verdict, encode_model

# The baseline is the verdict's last field but one: its JSON goes just before "scored_at".
if list(Verdict.model_fields)[-2:] != ["baseline", "scored_at"]:
    raise RuntimeError("Verdict's fields moved: update detector_worker/verdict_json.py")
_BASELINE: set[str] = {"baseline"}
_SCORED_AT = b',"scored_at":'
_BASELINE_KEY = b',"baseline":'
# The serializers `model_dump_json` calls, called directly: their bytes, without the string
# model_dump_json decodes them into and encode_model encodes back (~1.4 µs a verdict).
_VERDICT_JSON = Verdict.__pydantic_serializer__.to_json
_BASELINE_JSON = Baseline.__pydantic_serializer__.to_json
# Baselines whose JSON is kept, by identity: the models are cached per held baseline
# (held_baseline.MODEL_CACHE_SIZE), so the busy scopes keep the same instance.
_CACHE_SIZE = 4096
_json_by_id: dict[int, tuple[Baseline, bytes]] = {}


def encode_verdict(verdict: Verdict) -> bytes:
    """The same bytes as `encode_model(verdict)`."""
    baseline = verdict.baseline
    if baseline is None:
        return encode_model(verdict)
    # A string value cannot hold this key with unescaped quotes: the last one is the field.
    head, _, scored_at = _VERDICT_JSON(verdict, exclude=_BASELINE).rpartition(_SCORED_AT)
    return b"".join((head, _BASELINE_KEY, _baseline_json(baseline), _SCORED_AT, scored_at))


def _baseline_json(baseline: Baseline) -> bytes:
    entry = _json_by_id.get(id(baseline))
    # The entry holds the model, so its id cannot be reused by another while cached.
    if entry is not None and entry[0] is baseline:
        return entry[1]
    if len(_json_by_id) >= _CACHE_SIZE:
        _json_by_id.clear()
    text = _BASELINE_JSON(baseline)
    _json_by_id[id(baseline)] = (baseline, text)
    return text
