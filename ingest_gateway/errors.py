"""JSON error replies that name each bad field."""

from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from schemas import ErrorBody, FieldError


@dataclass(frozen=True)
class Rejection(Exception):
    status: int
    error: str
    reason: str
    detail: tuple[FieldError, ...] = ()


def field_errors(error: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        context = problem.get("ctx") or {}
        if problem["type"] == "currency_precision":
            field, message = str(context["field"]), str(context["message"])
        errors.append(
            FieldError(
                field=f"{prefix}{field}" if field else prefix.rstrip(".") or "(body)",
                message=message,
            )
        )
    return errors


def error_response(
    status: int,
    error: str,
    detail: list[FieldError] | tuple[FieldError, ...] = (),
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = ErrorBody(error=error, detail=list(detail))
    return web.json_response(body.model_dump(mode="json"), status=status, headers=headers)


def query_rejection(field: str, message: str, reason: str) -> Rejection:
    return Rejection(400, "invalid query", reason, (FieldError(field=field, message=message),))
