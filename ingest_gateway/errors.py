"""JSON error replies that name each bad field."""

from aiohttp import web
from pydantic import ValidationError

from schemas import ErrorBody, FieldError


def field_errors(error: ValidationError) -> list[FieldError]:
    errors = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(body)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append(FieldError(field=field, message=message))
    return errors


def error_response(
    status: int,
    error: str,
    detail: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = ErrorBody(error=error, detail=detail or [])
    return web.json_response(body.model_dump(mode="json"), status=status, headers=headers)
