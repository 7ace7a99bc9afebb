"""Pieces of the OpenAPI document every group of paths uses: references to the models of
`schemas/`, JSON bodies, the error answers every data route may give, path and query
parameters."""

from typing import Any

from pydantic import BaseModel

from schemas import UUID_PATTERN, ErrorBody, anchored

_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref(ErrorBody), description)


def _either(description: str, *models: type[BaseModel]) -> dict[str, Any]:
    return _json({"anyOf": [_ref(model) for model in models]}, description)


def _with_headers(response: dict[str, Any], headers: dict[str, Any]) -> dict[str, Any]:
    return {**response, "headers": headers}


_STRING = {"schema": {"type": "string"}}
_ERRORS = {
    "401": _with_headers(
        _error("No valid API key"),
        {"WWW-Authenticate": {**_STRING, "description": 'Bearer realm="jalytics"'}},
    ),
    "429": _with_headers(
        _error("Rate limited"),
        {
            "Retry-After": {
                "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                "description": "Seconds until this key may send again",
            }
        },
    ),
    # Every data route needs a scope (ingest, read, analyst, admin): a key without it gets 403.
    "403": _error("The API key lacks the scope this route needs (named in the error)"),
    "503": _error(
        "A dependency (Kafka or PostgreSQL) is unavailable, or PostgreSQL did not answer a"
        " read within DATABASE_TIMEOUT_SECONDS"
    ),
}
# The keyset paging of the listings (ingest_gateway.paging).
PAGE_HEADERS = {
    "X-Next-Cursor": {**_STRING, "description": "The next page's cursor"},
    "Link": {**_STRING, "description": '<next page URL>; rel="next"'},
}
_BODY_ERRORS = {
    "400": _error("Malformed JSON, bad query or header (an API key not visible ASCII)"),
    "408": _error("Body not received within BODY_READ_TIMEOUT_SECONDS; connection closed"),
    "409": _error("Idempotency-Key reused for a different request, or still in progress"),
    "413": _error("Body too large"),
    "415": _error("Content-Type is not application/json"),
    "422": _error("Invalid fields (each one named)"),
}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid", "pattern": anchored(UUID_PATTERN)},
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }
