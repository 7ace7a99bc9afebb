"""The OpenAPI document names every operation and the headers the gateway really sends."""

import re
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from ingest_gateway.app import create_app
from ingest_gateway.context import ROUTE_SCOPES
from ingest_gateway.openapi import openapi_document
from ingest_gateway.settings import GatewaySettings

SETTINGS = GatewaySettings(_env_file=None, database_url="postgresql://u:p@db/x", auth_disabled=True)
DOCUMENT = openapi_document(SETTINGS)
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]
TAGS = {tag["name"] for tag in DOCUMENT["tags"]}


@pytest.mark.parametrize(("name", "operation"), OPERATIONS)
def test_every_operation_has_an_id_and_declared_tags(name: str, operation: dict[str, Any]) -> None:
    assert operation["operationId"], name
    assert operation["tags"] and set(operation["tags"]) <= TAGS, name


def test_operation_ids_are_unique() -> None:
    ids = [operation["operationId"] for _, operation in OPERATIONS]
    assert len(ids) == len(set(ids))


def _headers(operation: str, status: str) -> set[str]:
    return set(dict(OPERATIONS)[operation]["responses"][status].get("headers", {}))


def test_the_headers_the_gateway_sends_are_declared() -> None:
    for name, operation in OPERATIONS:
        responses = operation["responses"]
        if "401" in responses:
            assert "WWW-Authenticate" in _headers(name, "401"), name
        if "429" in responses:
            assert "Retry-After" in _headers(name, "429"), name
    assert "Link" in _headers("GET /alerts", "200")
    for replayable in (
        ("POST /transactions", "201"),
        ("POST /transactions", "202"),
        ("POST /transactions/batch", "200"),
        ("POST /transactions/{id}/reversal", "201"),
    ):
        assert "Idempotent-Replayed" in _headers(*replayable), replayable


def test_prefer_is_a_documented_request_header() -> None:
    parameters = dict(OPERATIONS)["POST /transactions"]["parameters"]
    assert {"name": "Prefer", "in": "header"}.items() <= next(
        p for p in parameters if p["name"] == "Prefer"
    ).items()


@pytest.mark.parametrize("path", ["/transactions/not-a-uuid", "/transactions/1/reversal"])
async def test_an_id_that_is_not_a_uuid_is_a_404_as_documented(path: str) -> None:
    app = create_app(SETTINGS, CollectorRegistry())
    match = await app.router.resolve(make_mocked_request("GET", path, app=app))
    assert match.http_exception is not None and match.http_exception.status == 404
    responses = dict(OPERATIONS)["GET /transactions/{id}"]["responses"]
    assert "UUID" in responses["404"]["description"]
    assert "UUID" not in responses["400"]["description"]


def test_every_scoped_operation_documents_403() -> None:
    """Every route but the open ones needs a scope, and a key without it gets 403."""
    for name, operation in OPERATIONS:
        if operation.get("security") == []:
            continue
        assert "403" in operation["responses"], name


def test_the_scope_an_operation_names_is_the_one_its_route_requires() -> None:
    app = create_app(SETTINGS, CollectorRegistry())
    required = {
        f"{route.method} {route.resource.canonical}": scope
        for route, scope in app[ROUTE_SCOPES].items()
        if route.resource is not None
    }
    named = {
        name: re.search(r"`(\w+)` scope", operation["description"])
        for name, operation in OPERATIONS
        if "Needs an API key" in operation.get("description", "")
    }
    assert {"GET /alerts/{id}", "PATCH /alerts/{id}", "POST /suppressions"} <= set(named)
    for name, match in named.items():
        assert match is not None and match.group(1) == required[name], name
