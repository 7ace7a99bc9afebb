"""Each worker's database role holds exactly the rights its SQL needs (migrations 006, 008)
and none of those PostgreSQL gives every role by default (ops/least_privilege.sql, F13).

What each worker may do is proved by running its real code under its role (the other
integration tests and the end-to-end test log in that way); here: the exact grants, the
statements each role is refused, and the start-up check of an unmigrated schema.
"""

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from benchmarks.support import delete_topics, settings_from
from detector_worker.decision import BODY_FIELDS
from shared.kafka import project_topics
from shared.migrations import DEFAULT_DIR, SchemaNotReady, apply_migrations, check_migrated
from shared.settings import CommonSettings
from tests.conftest import Isolated, isolated_env
from tests.infra import _exports as exports
from tests.processes import ROOT, PrivateService, free_port

pytestmark = pytest.mark.integration

ROLES = {
    "gateway": "jalytics_gateway",
    "detector": "jalytics_detector",
    "baseline": "jalytics_baseline",
    "notifier": "jalytics_notifier",
}
ALL = tuple(ROLES)

# (worker, table, privilege) granted on whole tables; every other pair is refused.
TABLE_GRANTS = {
    *((worker, "schema_migrations", "SELECT") for worker in ALL),
    ("gateway", "transactions", "SELECT"),
    ("gateway", "alerts", "SELECT"),
    ("gateway", "reversals", "SELECT"),
    ("gateway", "reversals", "INSERT"),
    ("gateway", "idempotency_keys", "SELECT"),
    ("gateway", "idempotency_keys", "INSERT"),
    ("gateway", "idempotency_keys", "DELETE"),
    ("gateway", "baseline_history", "SELECT"),
    *(
        ("gateway", table, privilege)
        for table in ("alert_history", "suppressions")
        for privilege in ("SELECT", "INSERT")
    ),
    ("gateway", "webhook_subscriptions", "INSERT"),
    # The analyst inbox (migration 013): its sign-in sessions.
    *(("gateway", "ui_sessions", privilege) for privilege in ("SELECT", "INSERT", "DELETE")),
    ("detector", "transactions", "INSERT"),
    ("detector", "alerts", "INSERT"),
    ("detector", "suppressions", "SELECT"),
    ("baseline", "baseline_rollup", "SELECT"),
    ("baseline", "baseline_window_bins", "SELECT"),
    ("baseline", "baseline_rollup_bins", "SELECT"),  # the open days (migration 015)
    ("baseline", "baseline_window_hours", "SELECT"),  # the closed days' hours (migration 016)
    ("baseline", "baseline_window_weekdays", "SELECT"),  # and their weekdays (migration 018)
    ("baseline", "baseline_window_medians", "SELECT"),  # and their medians (migration 019)
    ("baseline", "merchant_categories", "SELECT"),  # each merchant's peers (migration 025)
    ("baseline", "baseline_history", "INSERT"),
    ("baseline", "baselines_current", "SELECT"),
    ("baseline", "baselines_current", "INSERT"),
    ("baseline", "baselines_current", "DELETE"),
    # The webhook notifier (migration 012): reads the subscriptions (secrets included, to
    # sign), writes its dead letters.
    ("notifier", "webhook_subscriptions", "SELECT"),
    ("notifier", "webhook_dead_letters", "INSERT"),
}
# (worker, table.column, privilege) granted on single columns.
COLUMN_GRANTS = {
    ("gateway", "idempotency_keys.status", "UPDATE"),
    ("gateway", "idempotency_keys.response", "UPDATE"),
    ("gateway", "idempotency_keys.headers", "UPDATE"),
    # ON CONFLICT (id) DO NOTHING needs to read the conflict target; a replay with another
    # body is told apart by what the client stated (migration 010).
    ("detector", "transactions.id", "SELECT"),
    *(("detector", f"transactions.{column}", "SELECT") for column in BODY_FIELDS),
    ("detector", "alerts.transaction_id", "SELECT"),
    ("detector", "alerts.suppression_id", "SELECT"),
    # The alert workflow (migration 011): the gateway changes only these columns.
    *(
        ("gateway", f"alerts.{column}", "UPDATE")
        for column in ("status", "resolution", "assignee", "updated_at")
    ),
    ("gateway", "suppressions.expires_at", "UPDATE"),
    ("gateway", "webhook_subscriptions.deleted_at", "UPDATE"),
    # Every column but the secret (migration 014): only the notifier, which signs, reads it.
    *(
        ("gateway", f"webhook_subscriptions.{column}", "SELECT")
        for column in (
            "id",
            "url",
            "min_severity",
            "category",
            "merchant",
            "created_by",
            "created_at",
            "deleted_at",
        )
    ),
    ("baseline", "baselines_current.baseline_id", "UPDATE"),
    # ON CONFLICT (event_id) DO NOTHING: a replayed dead letter is not written twice.
    ("notifier", "webhook_dead_letters.event_id", "SELECT"),
}
# A new table makes this test fail until someone decides who may touch it.
TABLES = {
    "schema_migrations",
    "transactions",
    "alerts",
    "reversals",
    "idempotency_keys",
    "baseline_rollup",
    "baseline_rollup_bins",
    "baseline_window",
    "baseline_window_bins",
    "baseline_rollup_hours",
    "baseline_window_hour_sums",
    "baseline_window_hours",
    "baseline_window_weekdays",
    "baseline_rollup_medians",
    "baseline_window_medians",
    "merchant_categories",
    "baseline_history",
    "baselines_current",
    "alert_history",
    "suppressions",
    "webhook_subscriptions",
    "ui_sessions",
    "webhook_dead_letters",
}

_TABLE_ACL = """
SELECT c.relname, r.rolname, a.privilege_type
FROM pg_class c CROSS JOIN aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
WHERE c.relnamespace = %s::regnamespace AND r.rolname = ANY(%s)
"""
_COLUMN_ACL = """
SELECT c.relname || '.' || att.attname, r.rolname, a.privilege_type
FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid
CROSS JOIN aclexplode(att.attacl) a JOIN pg_roles r ON r.oid = a.grantee
WHERE c.relnamespace = %s::regnamespace AND r.rolname = ANY(%s)
"""


def granted(db: Any, schema: str, query: str) -> set[tuple[str, str, str]]:
    worker_of = {role: worker for worker, role in ROLES.items()}
    rows = db.execute(query, (schema, list(worker_of))).fetchall()
    return {(worker_of[role], name, privilege) for name, role, privilege in rows}


def test_each_role_holds_exactly_its_grants(isolated: Isolated, db: Any) -> None:
    tables = db.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r'",
        (isolated.schema,),
    ).fetchall()
    assert {name for (name,) in tables} == TABLES
    assert granted(db, isolated.schema, _TABLE_ACL) == TABLE_GRANTS
    assert granted(db, isolated.schema, _COLUMN_ACL) == COLUMN_GRANTS
    for role in ROLES.values():
        may_create = db.execute(
            "SELECT has_schema_privilege(%s, %s, 'CREATE')", (role, isolated.schema)
        ).fetchone()
        assert may_create == (False,), role


@contextmanager
def login(isolated: Isolated, worker: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(
        isolated.worker_urls[worker],
        autocommit=True,
        options=f"-c search_path={isolated.schema}",
    ) as conn:
        yield conn


TXN = (
    "INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,"
    " anomaly, scored_at) VALUES (gen_random_uuid(), 10, 'USD', 'food', 'Cafe', now(), false,"
    " now())"
)
EVERYONE_REFUSED = [
    "DROP TABLE transactions CASCADE",
    "TRUNCATE transactions CASCADE",
    "ALTER TABLE alerts ADD COLUMN note text",
    "CREATE TABLE intruder (id int)",
    "DELETE FROM transactions",
    "UPDATE transactions SET anomaly = true",
    "UPDATE alerts SET severity = 'medium'",
    "DELETE FROM alerts",
    "DELETE FROM schema_migrations",
    "INSERT INTO baseline_rollup VALUES ('category', 'food', 'USD', now(), 1, 1, 1, 0, 0)",
    "UPDATE baseline_rollup SET total = 0",
    "UPDATE baseline_history SET mean = 0",
    "SELECT baseline_rollup_add()",
]
REFUSED = [
    *((worker, statement) for worker in ALL for statement in EVERYONE_REFUSED),
    ("gateway", TXN),
    (
        "gateway",
        "INSERT INTO alerts (id, transaction_id, severity, rule, alert_message,"
        " baseline_id) VALUES (gen_random_uuid(), gen_random_uuid(), 'high', 'r', 'm',"
        " gen_random_uuid())",
    ),
    ("gateway", "SELECT * FROM baseline_rollup"),
    ("gateway", "UPDATE ui_sessions SET key_name = 'x'"),
    ("gateway", "DELETE FROM alert_history"),
    ("gateway", "UPDATE alert_history SET note = 'x'"),
    ("gateway", "DELETE FROM suppressions"),
    ("gateway", "UPDATE suppressions SET reason = 'x'"),
    ("gateway", "UPDATE idempotency_keys SET request_hash = 'x'"),
    ("gateway", "DELETE FROM reversals"),
    ("gateway", "UPDATE reversals SET reason = 'x'"),
    ("detector", "SELECT severity FROM transactions"),
    ("detector", "SELECT received_at FROM transactions"),
    ("detector", "SELECT * FROM alerts"),
    ("detector", "SELECT * FROM baseline_rollup"),
    ("detector", "SELECT * FROM idempotency_keys"),
    ("detector", "SELECT * FROM reversals"),
    (
        "detector",
        "INSERT INTO reversals (id, transaction_id, idempotency_key, api_key)"
        " VALUES (gen_random_uuid(), gen_random_uuid(), 'k', 'a')",
    ),
    ("baseline", "SELECT * FROM transactions"),
    ("baseline", "SELECT * FROM alerts"),
    ("baseline", TXN),
    ("baseline", "SELECT * FROM baseline_history"),
    ("baseline", "DELETE FROM baseline_history"),
    ("baseline", "UPDATE baselines_current SET scope_name = 'x'"),
    ("baseline", "SELECT * FROM idempotency_keys"),
    ("notifier", "SELECT * FROM alerts"),
    ("notifier", "SELECT * FROM transactions"),
    ("notifier", "SELECT * FROM webhook_dead_letters"),
    ("notifier", "UPDATE webhook_subscriptions SET url = 'http://example.com/'"),
    ("notifier", "UPDATE webhook_subscriptions SET deleted_at = now()"),
    ("notifier", "DELETE FROM webhook_dead_letters"),
    ("gateway", "SELECT * FROM webhook_dead_letters"),
    ("gateway", "UPDATE webhook_subscriptions SET secret = 'x'"),
    ("gateway", "SELECT secret FROM webhook_subscriptions"),
]


@pytest.mark.parametrize("worker", ALL)
def test_a_role_is_refused_what_its_worker_never_does(isolated: Isolated, worker: str) -> None:
    allowed = []
    with login(isolated, worker) as conn:
        for statement in (s for w, s in REFUSED if w == worker):
            try:
                conn.execute(statement)
                allowed.append(statement)
            except errors.InsufficientPrivilege:
                pass
    assert allowed == []


def test_the_rollup_trigger_writes_for_the_detector_and_ignores_its_temp_tables(
    isolated: Isolated,
) -> None:
    # The trigger function runs as the owner (SECURITY DEFINER) with its search_path pinned:
    # a temporary table named like the rollup must not receive the rows (nor run its code
    # with the owner's rights). Workers may not create temporary tables where provisioning
    # could revoke that right (F13); where it could not (a managed database whose owner is
    # not ours), the pin still holds. That case, in a database of the test's own:
    with own_database(isolated) as env:
        schema, owner = env["DATABASE_SCHEMA"], env["DATABASE_URL"]
        apply_migrations(owner, schema)
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(
                sql.SQL("GRANT TEMPORARY ON DATABASE {} TO jalytics_detector").format(
                    sql.Identifier(conn.info.dbname)
                )
            )
        detector = env["DETECTOR_DATABASE_URL"]
        with psycopg.connect(detector, autocommit=True, options=f"-c search_path={schema}") as conn:
            conn.execute(
                "CREATE TEMP TABLE baseline_rollup (scope_kind text, scope_name text,"
                " currency text, day date, sample_count bigint, total numeric, total_sq numeric,"
                " log_total double precision, log_total_sq double precision,"
                " PRIMARY KEY (scope_kind, scope_name, currency, day))"
            )
            conn.execute(TXN)
            temp = conn.execute("SELECT count(*) FROM pg_temp.baseline_rollup").fetchone()
            assert temp == (0,)
        with psycopg.connect(owner, options=f"-c search_path={schema}") as conn:
            rollup = conn.execute("SELECT sum(sample_count) FROM baseline_rollup").fetchone()
            assert rollup == (2,)


def test_the_start_up_check_names_the_missing_migrations_and_what_to_run(
    isolated: Isolated, db: Any, tmp_path: Path
) -> None:
    check_migrated(isolated.worker_urls["baseline"], isolated.schema)  # migrated: passes
    fresh = f"t_{uuid.uuid4().hex[:10]}"
    with pytest.raises(SchemaNotReady, match=r"lacks migration\(s\) 001_initial.sql, .*owner"):
        check_migrated(isolated.worker_urls["detector"], fresh)

    # A schema migrated before the worker roles: the worker's role was granted nothing yet.
    files = sorted(DEFAULT_DIR.glob("[0-9][0-9][0-9]_*.sql"))
    roles = next(i for i, path in enumerate(files) if path.name == "006_worker_roles.sql")
    for path in files[:roles]:
        (tmp_path / path.name).write_text(path.read_text())
    older = f"t_{uuid.uuid4().hex[:10]}"
    try:
        apply_migrations(isolated.env["DATABASE_URL"], older, tmp_path)
        with pytest.raises(SchemaNotReady, match=r"may not read schema .*`jalytics-migrate`"):
            check_migrated(isolated.worker_urls["gateway"], older)
        missing = ", ".join(path.name for path in files[roles:])
        with pytest.raises(SchemaNotReady, match=re.escape(f"lacks migration(s) {missing}:")):
            check_migrated(isolated.env["DATABASE_URL"], older)
    finally:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(older)))


def in_database(url: str, name: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=f"/{name}").geturl()


@contextmanager
def own_database(isolated: Isolated) -> Iterator[dict[str, str]]:
    """A database of the test's own (provisioning changes database-wide rights, which the
    shared one must keep for other sessions); its env, the workers' logins included."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    owner = isolated.env["DATABASE_URL"]
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        logins = {
            f"{worker.upper()}_DATABASE_URL": in_database(url, name)
            for worker, url in isolated.worker_urls.items()
        }
        yield isolated.env | logins | {"DATABASE_URL": in_database(owner, name)}
    finally:
        _drop_database(owner, name)


def _drop_database(owner: str, name: str, patience: float = 15.0) -> None:
    """FORCE may only end the owner's own sessions: a worker role's session that is still
    closing (its client already gone) makes the drop fail with InsufficientPrivilege until
    the server has ended it, which takes moments (seen once in CI)."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    deadline = time.monotonic() + patience
    with psycopg.connect(owner, autocommit=True) as conn:
        while True:
            try:
                conn.execute(drop)
                return
            except errors.InsufficientPrivilege:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def provision(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.provision"],
        cwd=ROOT,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_provision_migrates_and_checks_each_workers_login(isolated: Isolated) -> None:
    with own_database(isolated) as env:
        result = provision(env)
    assert result.returncode == 0, result.stderr[-2000:]
    for role in ROLES.values():
        assert f"login for {role} ready" in result.stdout
    output = result.stdout + result.stderr
    passwords = [urllib.parse.urlsplit(url).password for url in isolated.worker_urls.values()]
    assert all(password and password not in output for password in passwords)
    # As the database's owner it revokes TEMPORARY; the rest needs a superuser: it says so.
    assert "TEMPORARY" not in output
    if "warning:" in output:
        assert "run ops/least_privilege.sql as a superuser" in output


# --- F13: on a cluster set up as `make up` sets it up -----------------------------------------


@dataclass(frozen=True)
class Hardened:
    """A private cluster started by ops/postgres.sh and provisioned by jalytics-provision."""

    service: PrivateService
    env: dict[str, str]  # the owner's, with the workers' logins and the test's schema

    def login(self, worker: str, database: str | None = None) -> psycopg.Connection[Any]:
        url = self.env[f"{worker.upper()}_DATABASE_URL"]
        return psycopg.connect(
            in_database(url, database) if database else url,
            autocommit=True,
            options=f"-c search_path={self.env['DATABASE_SCHEMA']}",
        )


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[Hardened]:
    ports = {"JALYTICS_PG_PORT": str(free_port())}
    with PrivateService("postgres.sh", tmp_path_factory.mktemp("pg-state"), ports) as service:
        logins = exports(service.run("env"))
        env = isolated_env(kafka_bootstrap, logins["DATABASE_URL"]) | logins
        result = provision(env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "warning:" not in result.stdout  # the superuser did the rest
        yield Hardened(service, env)
    topics = project_topics(settings_from(CommonSettings, env))
    asyncio.run(delete_topics(kafka_bootstrap, [topic.name for topic in topics]))


def refused(conn: psycopg.Connection[Any], statement: str) -> bool:
    try:
        conn.execute(statement)
    except errors.InsufficientPrivilege:
        return True
    return False


@pytest.mark.parametrize("worker", ALL)
def test_f13_a_worker_role_creates_no_temporary_objects_and_no_large_objects(
    hardened: Hardened, worker: str
) -> None:
    statements = [
        "CREATE TEMPORARY TABLE intruder (id int)",
        "CREATE FUNCTION pg_temp.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "SELECT lo_creat(-1)",
        "SELECT lo_create(0)",
        "SELECT lo_from_bytea(0, 'kept after the session')",
    ]
    with hardened.login(worker) as conn:
        allowed = [statement for statement in statements if not refused(conn, statement)]
    assert allowed == []


@pytest.mark.parametrize("worker", ALL)
@pytest.mark.parametrize("database", ["postgres", "template1"])
def test_f13_a_worker_role_cannot_connect_to_the_maintenance_databases(
    hardened: Hardened, worker: str, database: str
) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        hardened.login(worker, database).close()


def test_f13_the_detector_stages_its_batches_without_the_right_to_create_them(
    hardened: Hardened,
) -> None:
    with hardened.login("detector") as conn, conn.transaction():
        conn.execute("SELECT prepare_transaction_staging()")
        conn.execute("SELECT prepare_transaction_staging()")  # once per connection suffices
        conn.execute(
            "INSERT INTO incoming_transactions (id, amount, currency, category, merchant,"
            " transaction_date, anomaly, scored_at) VALUES (gen_random_uuid(), 10, 'USD',"
            " 'food', 'Cafe', now(), false, now())"
        )
        moved = conn.execute(
            "INSERT INTO transactions (id, amount, currency, category, merchant,"
            " transaction_date, anomaly, scored_at) SELECT id, amount, currency, category,"
            " merchant, transaction_date, anomaly, scored_at FROM incoming_transactions"
        )
        assert moved.rowcount == 1
    for worker in ("gateway", "baseline"):
        with hardened.login(worker) as conn:
            assert refused(conn, "SELECT prepare_transaction_staging()"), worker


def test_f13_what_a_worker_alters_on_its_own_role_is_undone_at_the_next_start(
    hardened: Hardened,
) -> None:
    # PostgreSQL lets every role change its own password and settings, with no right to
    # revoke (ALTER ROLE docs: "ordinary roles can only change their own password"), so
    # each start of ops/postgres.sh puts both back.
    with hardened.login("gateway") as conn:
        conn.execute("ALTER ROLE CURRENT_USER SET statement_timeout = '1ms'")
        conn.execute("ALTER ROLE CURRENT_USER IN DATABASE jalytics SET work_mem = '64kB'")
        conn.execute("ALTER ROLE CURRENT_USER PASSWORD 'taken-over'")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        hardened.login("gateway").close()
    hardened.service.run("start")
    with hardened.login("gateway") as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
        assert conn.execute("SHOW work_mem").fetchone() != ("64kB",)
