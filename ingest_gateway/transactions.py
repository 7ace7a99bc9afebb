"""Transaction endpoints: ingest (one or a batch), read back with the verdict, reverse."""

import hashlib
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from functools import cache
from uuid import NAMESPACE_URL, UUID, uuid5

from aiohttp import web

from ingest_gateway.context import (
    CALLER,
    PRODUCER,
    PUBLISHER,
    READ_MODEL,
    REVERSALS,
    SETTINGS,
    TRANSIENT_ANSWER,
    VERDICTS,
)
from ingest_gateway.errors import Rejection, error_response
from ingest_gateway.reversals import AlreadyReversed, UnknownTransaction
from ingest_gateway.validation import parse_model, parse_transaction, path_uuid, read_json
from schemas import (
    BatchIn,
    BatchItemResult,
    BatchResult,
    FieldError,
    OutcomeUnknown,
    ReversalIn,
    Transaction,
    TransactionAccepted,
    Verdict,
    VerdictReceipt,
)
from shared.json_text import json_text

log = logging.getLogger(__name__)
NOT_STORED = "no such transaction (a new one may not be scored yet)"
OUTCOME_UNKNOWN = (
    "the transaction log did not acknowledge in time: the transaction may or may not be"
    " recorded; send the same body again with this Idempotency-Key, it is recorded at most once"
)

_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://jalytics.io/transactions")
_NAMESPACE_BYTES = _ID_NAMESPACE.bytes
# The variant (RFC 4122) and version bits of a UUID's 128-bit number, as uuid.UUID sets them.
_VERSION_MASK = ~((0xC000 << 48) | (0xF000 << 64))
_VARIANT = 0x8000 << 48


def _versioned(raw: bytes, version: int) -> int:
    """The number of the UUID `uuid.UUID(bytes=raw[:16], version=version)` makes."""
    return int.from_bytes(raw[:16]) & _VERSION_MASK | _VARIANT | version << 76


def ingest_key(request: web.Request) -> str:
    """The request's Idempotency-Key, or a new one that the answer hands to the client:
    `str(uuid4())`'s text, a third of its cost (no UUID object on the way)."""
    key = request.headers.get("Idempotency-Key")
    if key:
        return key
    text = f"{_versioned(os.urandom(16), 4):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def transaction_id(caller: str, key: str, body: bytes, item: int | None = None) -> UUID:
    """The same caller, key and exact body bytes (and place in a batch) give the same id, so
    a retry after an unknown outcome is stored once by the detector (it writes idempotently
    on the id). The body counts: after the key's record expires, a new body under an old key
    is a new transaction, never a "duplicate" the detector would silently drop.

    uuid5(_ID_NAMESPACE, name), computed without its per-call import and namespace bytes."""
    digest = hashlib.sha256(body).hexdigest()
    name = f"{caller}\0{key}\0{digest}\0{'' if item is None else item}"
    # SHA-1 as RFC 4122 defines version 5 (uuid5): a name-based id, not a security digest.
    sha1 = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False)
    return UUID(int=_versioned(sha1.digest(), 5))


def _answer_headers(key: str, txn_id: UUID | None = None) -> dict[str, str]:
    headers = {"Idempotency-Key": key}
    if txn_id is not None:
        headers["X-Transaction-Id"] = str(txn_id)
    return headers


# The query strings clients send (or none): read without parsing the query.
_PLAIN_WAIT = {"": "true", "wait=true": "true", "wait=false": "false"}


def _wants_verdict(request: web.Request) -> bool:
    wait = _PLAIN_WAIT.get(request.rel_url.raw_query_string) or request.query.get("wait", "true")
    if wait not in ("true", "false"):
        # A typo such as ?wait= or ?wait=flase must not silently mean "wait".
        detail = (FieldError(field="wait", message="must be true or false"),)
        raise Rejection(400, "invalid query parameter", "invalid_query", detail)
    return wait == "true" and "respond-async" not in request.headers.get("Prefer", "")


def _require_kafka(request: web.Request) -> None:
    """A gateway started while Kafka was away has no producer yet (it keeps trying): a clear
    503 before anything is sent, not a publish left to time out as "outcome unknown"."""
    if not request.app[PRODUCER].started:
        raise Rejection(
            503, "Kafka unavailable: nothing was published; retry later", "kafka_unavailable"
        )


async def post_transaction(request: web.Request) -> web.Response:
    settings, verdicts = request.app[SETTINGS], request.app[VERDICTS]
    now = datetime.now(UTC)
    payload, key = await read_json(request), ingest_key(request)
    txn_id = transaction_id(request[CALLER], key, await request.read())
    txn = parse_transaction(payload, txn_id, now, _max_future(request))
    wait = _wants_verdict(request) and settings.verdict_wait_seconds > 0
    _require_kafka(request)
    # Register before publishing: a fast verdict must not arrive before anyone listens.
    pending = verdicts.expect(txn.id) if wait else None
    try:
        if await request.app[PUBLISHER].publish([txn]) != [True]:
            unknown = OutcomeUnknown(
                error=OUTCOME_UNKNOWN, transaction_id=txn.id, idempotency_key=key
            )
            return web.json_response(
                unknown.model_dump(mode="json"), status=503, headers=_answer_headers(key, txn.id)
            )
        verdict = await verdicts.wait(pending) if pending else None
    finally:
        if pending is not None:  # a 202 caller never registered
            verdicts.forget(txn.id)
    # The id's text once, for the header and the body.
    id_text = str(txn.id)
    return receipt(id_text, verdict, {"Idempotency-Key": key, "X-Transaction-Id": id_text})


def _encoded(reply: TransactionAccepted) -> bytes:
    """The answer's bytes as every JSON answer of the API is written (web.json_response's
    json.dumps: `"anomaly": true`, which the README shows and clients may have matched)."""
    return json.dumps(reply.model_dump(mode="json")).encode()


# The 202 body is the same but for the id: encoded once, from the model, around a placeholder
# id (a UUID's text never needs escaping). A third of the cost of encoding the model each time.
_PLACEHOLDER = UUID(int=0)
_PENDING_HEAD, _PENDING_TAIL = _encoded(TransactionAccepted(id=_PLACEHOLDER)).split(
    str(_PLACEHOLDER).encode()
)


def receipt(
    txn_id: UUID | str, verdict: Verdict | VerdictReceipt | None, headers: dict[str, str]
) -> web.Response:
    """201 with the verdict when it came in time, else 202 pending (txn_id: the id or its
    text)."""
    if verdict is None:
        body = b"%b%s%b" % (_PENDING_HEAD, str(txn_id).encode(), _PENDING_TAIL)
        return _json_answer(body, 202, headers)
    return _json_answer(_scored(txn_id, verdict), 201, headers)


def _scored(txn_id: UUID | str, verdict: Verdict | VerdictReceipt) -> bytes:
    """TransactionAccepted's JSON for a scored transaction, in its field order, without
    building the model: a third of the cost (tests/unit/test_receipt.py holds it to the model's
    encoding)."""
    reply = {
        "id": str(txn_id),
        "anomaly": verdict.anomaly,
        "status": "scored",
        "severity": verdict.severity,
        "alert_message": verdict.message,
        "z_score": verdict.z_score,
        "reason": "no_baseline" if verdict.baseline is None else None,
    }
    return json_text(reply).encode()


def _json_answer(body: bytes, status: int, headers: dict[str, str]) -> web.Response:
    """A JSON answer encoded already (the same Content-Type as web.json_response, given as a
    header: web.Response then skips composing it)."""
    return web.Response(body=body, status=status, headers=headers | _JSON_TYPE)


_JSON_TYPE = {"Content-Type": "application/json; charset=utf-8"}


async def post_batch(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    batch = parse_model(BatchIn, await read_json(request), "invalid batch")
    if len(batch.transactions) > settings.batch_max_items:
        message = f"at most {settings.batch_max_items} transactions per batch"
        raise Rejection(
            422,
            "invalid batch",
            "batch_too_large",
            (FieldError(field="transactions", message=message),),
        )
    now, max_future = datetime.now(UTC), _max_future(request)
    key, raw = ingest_key(request), await request.read()
    results: list[BatchItemResult] = []
    valid: list[tuple[int, Transaction]] = []
    for index, item in enumerate(batch.transactions):
        txn_id = transaction_id(request[CALLER], key, raw, index)
        try:
            txn = parse_transaction(item, txn_id, now, max_future, f"transactions.{index}.")
        except Rejection as exc:
            results.append(
                BatchItemResult(
                    index=index, status=exc.status, error=exc.error, detail=list(exc.detail)
                )
            )
            continue
        valid.append((index, txn))
    if valid:
        _require_kafka(request)
    published = await request.app[PUBLISHER].publish([txn for _, txn in valid])
    for (index, txn), ok in zip(valid, published, strict=True):
        results.append(
            BatchItemResult(index=index, status=202, id=txn.id)
            if ok
            else BatchItemResult(index=index, status=503, id=txn.id, error=OUTCOME_UNKNOWN)
        )
    # Items with an unknown outcome: a retry of the batch must do it again, not replay this.
    request[TRANSIENT_ANSWER] = not all(published)
    results.sort(key=lambda r: r.index)
    accepted = sum(1 for r in results if r.status == 202)
    reply = BatchResult(accepted=accepted, rejected=len(results) - accepted, results=results)
    status = 503 if valid and not any(published) else 200
    return web.json_response(
        reply.model_dump(mode="json"), status=status, headers=_answer_headers(key)
    )


async def get_transaction(request: web.Request) -> web.Response:
    stored = await request.app[READ_MODEL].transaction(path_uuid(request))
    if stored is None:
        return error_response(404, NOT_STORED)
    return web.json_response(stored.model_dump(mode="json"))


async def post_reversal(request: web.Request) -> web.Response:
    txn_id = path_uuid(request)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise Rejection(
            400,
            "Idempotency-Key header is required",
            "missing_idempotency_key",
            (FieldError(field="Idempotency-Key", message="required"),),
        )
    payload = await read_json(request, required=False)
    body = parse_model(ReversalIn, payload if payload is not None else {}, "invalid reversal")
    try:
        reversal = await request.app[REVERSALS].record(txn_id, body.reason, key, request[CALLER])
    except UnknownTransaction:
        return error_response(404, NOT_STORED)
    except AlreadyReversed:
        return error_response(409, "transaction already reversed")
    return web.json_response(reversal.model_dump(mode="json"), status=201)


def _max_future(request: web.Request) -> timedelta:
    return _seconds(request.app[SETTINGS].max_future_skew_seconds)


@cache
def _seconds(seconds: int) -> timedelta:
    return timedelta(seconds=seconds)
