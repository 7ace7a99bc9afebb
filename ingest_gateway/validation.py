"""Reading a transaction from an HTTP request: every rejection says which field and why."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from pydantic import ValidationError

from ingest_gateway.errors import field_errors
from schemas import FieldError, MalformedJson, TransactionIn, decode_json


@dataclass(frozen=True)
class Rejection(Exception):
    status: int
    error: str
    reason: str
    detail: tuple[FieldError, ...] = ()


async def read_json(request: web.Request, max_bytes: int) -> object:
    if request.content_type != "application/json":
        raise Rejection(415, "Content-Type must be application/json", "content_type")
    if request.content_length is not None and request.content_length > max_bytes:
        raise Rejection(413, f"body larger than {max_bytes} bytes", "too_large")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise Rejection(413, f"body larger than {max_bytes} bytes", "too_large")
    try:
        return decode_json(body)
    except MalformedJson as exc:
        raise Rejection(400, str(exc), "malformed_json") from exc


def parse_transaction(payload: object, now: datetime, max_future: timedelta) -> TransactionIn:
    if not isinstance(payload, dict):
        raise Rejection(422, "body must be a JSON object", "not_object")
    try:
        txn = TransactionIn.model_validate(payload)
    except ValidationError as exc:
        raise Rejection(422, "invalid transaction", "invalid", tuple(field_errors(exc))) from exc
    if txn.transaction_date > now + max_future:
        detail = FieldError(field="transaction_date", message="must not be in the future")
        raise Rejection(422, "invalid transaction", "invalid", (detail,))
    return txn
