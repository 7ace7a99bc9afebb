"""Transaction endpoints: ingest (one or a batch), read back with the verdict, reverse."""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from aiohttp import web
from aiokafka.errors import KafkaError
from psycopg.errors import ForeignKeyViolation, UniqueViolation
from psycopg.rows import dict_row

from ingest_gateway.context import CALLER, METRICS, POOL, PRODUCER, SETTINGS, VERDICTS
from ingest_gateway.errors import Rejection, error_response
from ingest_gateway.validation import parse_model, parse_transaction, read_json
from schemas import (
    BatchIn,
    BatchItemResult,
    BatchResult,
    FieldError,
    ReversalIn,
    ReversalOut,
    Transaction,
    TransactionAccepted,
    TransactionIn,
    TransactionOut,
    Verdict,
    encode_model,
)
from schemas.records import transaction_key
from shared.db import timed

log = logging.getLogger(__name__)
UNAVAILABLE = "transaction log unavailable, nothing was recorded; retry"

_SELECT_TRANSACTION = """
SELECT t.id, t.amount::text AS amount, t.currency, t.category, t.merchant, t.transaction_date,
       t.received_at, t.account_id, t.client_transaction_id, t.anomaly, t.severity, t.rule,
       t.z_score, t.baseline_id, t.scored_at, a.id AS alert_id, a.alert_message,
       r.created_at AS reversed_at
FROM transactions t
LEFT JOIN alerts a ON a.transaction_id = t.id
LEFT JOIN reversals r ON r.transaction_id = t.id
WHERE t.id = %s
"""
_INSERT_REVERSAL = """
INSERT INTO reversals (id, transaction_id, reason, idempotency_key, api_key)
VALUES (%s, %s, %s, %s, %s)
RETURNING id, transaction_id, reason, created_at
"""


# With an Idempotency-Key the transaction id derives from it: a retry after a 503 whose
# record reached Kafka after all carries the same id, and the detector stores it once.
_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://jalytics.io/transactions")


def transaction_id(request: web.Request, item: int | None = None) -> UUID:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return uuid4()
    return uuid5(_ID_NAMESPACE, f"{request[CALLER]}\0{key}\0{'' if item is None else item}")


def _wire(body: TransactionIn, txn_id: UUID, now: datetime) -> Transaction:
    return Transaction(id=txn_id, received_at=now, **body.model_dump())


def _wants_verdict(request: web.Request) -> bool:
    wait = request.query.get("wait", "true")
    if wait not in ("true", "false"):
        # A typo such as ?wait= or ?wait=flase must not silently mean "wait".
        detail = (FieldError(field="wait", message="must be true or false"),)
        raise Rejection(400, "invalid query parameter", "invalid_query", detail)
    return wait == "true" and "respond-async" not in request.headers.get("Prefer", "")


async def post_transaction(request: web.Request) -> web.Response:
    settings, verdicts = request.app[SETTINGS], request.app[VERDICTS]
    now = datetime.now(UTC)
    body = parse_transaction(await read_json(request), now, _max_future(request))
    txn = _wire(body, transaction_id(request), now)
    wait = _wants_verdict(request) and settings.verdict_wait_seconds > 0
    # Register before publishing: a fast verdict must not arrive before anyone listens.
    pending = verdicts.expect(txn.id) if wait else None
    try:
        if await publish(request.app, [txn]) != [True]:
            return error_response(503, UNAVAILABLE)
        verdict = await verdicts.wait(pending, settings.verdict_wait_seconds) if pending else None
    finally:
        verdicts.forget(txn.id)
    return _receipt(txn.id, verdict)


def _receipt(txn_id: UUID, verdict: Verdict | None) -> web.Response:
    if verdict is None:
        reply = TransactionAccepted(id=txn_id)
        return web.json_response(reply.model_dump(mode="json"), status=202)
    reply = TransactionAccepted(
        id=txn_id,
        anomaly=verdict.anomaly,
        status="scored",
        severity=verdict.severity,
        alert_message=verdict.message,
        z_score=verdict.z_score,
    )
    return web.json_response(reply.model_dump(mode="json"), status=201)


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
    results: list[BatchItemResult] = []
    valid: list[tuple[int, Transaction]] = []
    for index, item in enumerate(batch.transactions):
        try:
            body = parse_transaction(item, now, max_future, prefix=f"transactions.{index}.")
        except Rejection as exc:
            results.append(
                BatchItemResult(
                    index=index, status=exc.status, error=exc.error, detail=list(exc.detail)
                )
            )
            continue
        valid.append((index, _wire(body, transaction_id(request, index), now)))
    published = await publish(request.app, [txn for _, txn in valid])
    for (index, txn), ok in zip(valid, published, strict=True):
        results.append(
            BatchItemResult(index=index, status=202, id=txn.id)
            if ok
            else BatchItemResult(index=index, status=503, error=UNAVAILABLE)
        )
    results.sort(key=lambda r: r.index)
    accepted = sum(1 for r in results if r.status == 202)
    reply = BatchResult(accepted=accepted, rejected=len(results) - accepted, results=results)
    status = 503 if valid and not any(published) else 200
    return web.json_response(reply.model_dump(mode="json"), status=status)


async def publish(app: web.Application, transactions: list[Transaction]) -> list[bool]:
    """Publish and wait for acks=all; per transaction, whether the broker acknowledged it."""
    if not transactions:
        return []
    settings, metrics, producers = app[SETTINGS], app[METRICS], app[PRODUCER]
    started = time.perf_counter()

    async def send(txn: Transaction) -> bool:
        producer = producers.current
        # The bound covers the whole publish: with the broker gone, send() itself waits for
        # metadata, and a client must get its 503 in bounded time, not hang.
        try:
            async with asyncio.timeout(settings.publish_timeout_seconds):
                await producer.send_and_wait(
                    settings.topic_transactions,
                    key=transaction_key(txn.id),
                    value=encode_model(txn),
                )
        except (KafkaError, TimeoutError) as exc:
            metrics.publish_failures.inc()
            producers.renew_soon(producer, exc)
            log.error("publish failed", extra={"transaction_id": str(txn.id), "error": repr(exc)})
            return False
        return True

    if len(transactions) == 1:  # the common case: no task per request for gather()
        outcomes = [await send(transactions[0])]
    else:
        outcomes = await asyncio.gather(*(send(txn) for txn in transactions))
    metrics.publish_duration.observe(time.perf_counter() - started)
    return outcomes


async def get_transaction(request: web.Request) -> web.Response:
    txn_id = _path_uuid(request)
    async with (
        request.app[POOL].connection() as conn,
        conn.cursor(row_factory=dict_row) as cur,
        timed(request.app[METRICS].db_query_duration, "select_transaction"),
    ):
        await cur.execute(_SELECT_TRANSACTION, (txn_id,))
        row = await cur.fetchone()
    if row is None:
        return error_response(404, "no such transaction (a new one may not be scored yet)")
    return web.json_response(TransactionOut.model_validate(row).model_dump(mode="json"))


async def post_reversal(request: web.Request) -> web.Response:
    txn_id = _path_uuid(request)
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
        async with (
            request.app[POOL].connection() as conn,
            conn.cursor(row_factory=dict_row) as cur,
            timed(request.app[METRICS].db_query_duration, "insert_reversal"),
        ):
            await cur.execute(
                _INSERT_REVERSAL, (uuid4(), txn_id, body.reason, key, request[CALLER])
            )
            row = await cur.fetchone()
    except ForeignKeyViolation:
        return error_response(404, "no such transaction (a new one may not be scored yet)")
    except UniqueViolation:
        return error_response(409, "transaction already reversed")
    return web.json_response(ReversalOut.model_validate(row).model_dump(mode="json"), status=201)


def _path_uuid(request: web.Request) -> UUID:
    try:
        return UUID(request.match_info["id"])
    except ValueError as exc:
        raise Rejection(
            400, "invalid path", "bad_id", (FieldError(field="id", message="must be a UUID"),)
        ) from exc


def _max_future(request: web.Request) -> timedelta:
    return timedelta(seconds=request.app[SETTINGS].max_future_skew_seconds)
