"""A worker logs in with no right to change the schema: started on one that is not
migrated, it stops at once and says what to run."""

import uuid

import pytest

from tests.conftest import Isolated
from tests.processes import WORKER_MODULES, run_to_exit

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("worker", list(WORKER_MODULES))
def test_a_worker_refuses_an_unmigrated_schema_naming_what_to_run(
    isolated: Isolated, worker: str
) -> None:
    env = isolated.worker_env(worker) | {"DATABASE_SCHEMA": f"t_{uuid.uuid4().hex[:10]}"}
    code, output = run_to_exit(worker, env, timeout=60)
    assert code != 0
    assert "lacks migration(s) 001_initial.sql" in output
    assert "jalytics-migrate" in output
