"""All of a request's reads answer within one DATABASE_TIMEOUT_SECONDS, not one each."""

import asyncio
from types import SimpleNamespace
from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ingest_gateway.context import SETTINGS
from ingest_gateway.deadlines import Overdue
from ingest_gateway.read_bound import read_within_bound
from ingest_gateway.settings import GatewaySettings

BOUND = 1.0


def request() -> web.Request:
    app = web.Application()
    app[SETTINGS] = cast(GatewaySettings, SimpleNamespace(database_timeout_seconds=BOUND))
    return make_mocked_request("GET", "/ui/", app=app)


async def read(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "rows"


async def test_reads_that_end_in_time_answer() -> None:
    req = request()
    assert await read_within_bound(req, read(0.01)) == "rows"
    assert await read_within_bound(req, read(0.01)) == "rows"


async def test_the_second_read_gets_only_what_the_first_left() -> None:
    """A session's lookup that took most of the bound leaves the page's read the rest: the
    caller hears Overdue at the bound, not at twice the bound."""
    req = request()
    assert await read_within_bound(req, read(BOUND * 0.4)) == "rows"
    with pytest.raises(Overdue):  # it would end within a bound of its own
        await read_within_bound(req, read(BOUND * 0.8))


async def test_time_between_reads_does_not_count() -> None:
    """A slow body read between the session's lookup and the page's read is not the
    database's time."""
    req = request()
    assert await read_within_bound(req, read(BOUND * 0.4)) == "rows"
    await asyncio.sleep(BOUND)
    assert await read_within_bound(req, read(BOUND * 0.1)) == "rows"


async def test_a_read_after_the_bound_passed_is_overdue_at_once() -> None:
    req = request()
    with pytest.raises(Overdue):
        await read_within_bound(req, read(BOUND * 2))
    with pytest.raises(Overdue):
        await read_within_bound(req, read(0))
