"""The relay of test_silent_database, to the PostgreSQL login of the worker a test module
names (`WORKER`), for the tests of writes to a database that goes silent. Its fixtures are
imported by name."""

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Isolated
from tests.faults.test_silent_database import SilenceableRelay, through

Relayed = tuple[SilenceableRelay, str]


@pytest.fixture
async def relayed(isolated: Isolated, request: pytest.FixtureRequest) -> AsyncIterator[Relayed]:
    """A relay to the database of the module's WORKER, and the URL that reaches it through
    the relay."""
    url = isolated.worker_urls[request.module.WORKER]
    _, target = through(url, 0)
    async with SilenceableRelay(target) as relay:
        yield relay, through(url, relay.port)[0]


@pytest.fixture
def relay(relayed: Relayed) -> SilenceableRelay:
    return relayed[0]
