"""`jalytics-provision`: apply the migrations, take from PUBLIC the database rights no worker
needs, make the workers' logins, create the topics.

Run it with the schema owner's DATABASE_URL before the workers start: they log in with no
right to change the schema and only check that it is migrated. Given a worker's own URL
(GATEWAY_, DETECTOR_, BASELINE_, NOTIFIER_DATABASE_URL), it makes that URL's user a login with that
password in the worker's group role (migration 006) unless it already is one, which needs
CREATEROLE (ops/postgres.sh makes them as the superuser instead).
"""

import asyncio
import contextlib
from pathlib import Path
from typing import LiteralString

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field

from shared.kafka import ensure_topics, project_topics
from shared.migrations import apply_migrations
from shared.settings import CommonSettings, PostgresUrl, load_settings

# Each worker's group role, granted per schema by ops/migrations/006_worker_roles.sql.
WORKER_ROLES = {
    "gateway": "jalytics_gateway",
    "detector": "jalytics_detector",
    "baseline": "jalytics_baseline",
    # The webhook notifier (ingest_gateway/webhooks; migration 012).
    "notifier": "jalytics_notifier",
}


class ProvisionSettings(CommonSettings):
    gateway_database_url: PostgresUrl | None = Field(default=None, repr=False)
    detector_database_url: PostgresUrl | None = Field(default=None, repr=False)
    baseline_database_url: PostgresUrl | None = Field(default=None, repr=False)
    notifier_database_url: PostgresUrl | None = Field(default=None, repr=False)

    def worker_urls(self) -> dict[str, str]:
        """Group role -> the URL its worker logs in with, for the URLs given."""
        urls = {
            "gateway": self.gateway_database_url,
            "detector": self.detector_database_url,
            "baseline": self.baseline_database_url,
            "notifier": self.notifier_database_url,
        }
        return {WORKER_ROLES[worker]: url for worker, url in urls.items() if url}


class ProvisionError(RuntimeError):
    pass


def logs_in_as_member(url: str, group: str) -> bool:
    """True when `url` logs in and its user holds the rights of `group`."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE')", (group,))
            return bool(row.fetchone() == (True,))
    except psycopg.Error:
        return False


def ensure_login(admin_url: str, url: str, group: str) -> None:
    """Make the user of `url` a login with its password and the rights of `group`."""
    if logs_in_as_member(url, group):
        return
    params = conninfo_to_dict(url)
    user, password = str(params.get("user", "")), str(params.get("password", ""))
    if not user or not password:
        raise ProvisionError(f"the URL for {group} must name a user and a password")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # Asked first: a refused statement would land in the server's log, password and all.
        may = conn.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if may != (True,):
            raise ProvisionError(
                f"role {conn.info.user} may not create the login {user} (needs CREATEROLE): "
                "create it as a superuser, as ops/postgres.sh does"
            )
        ensure_group(conn, group)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN INHERIT PASSWORD {}").format(
                sql.SQL("ALTER" if exists else "CREATE"),
                sql.Identifier(user),
                sql.Literal(password),
            )
        )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(user)))


def ensure_group(conn: psycopg.Connection[tuple[object, ...]], group: str) -> None:
    """The NOLOGIN group role (migration 006 makes it too); safe against a concurrent maker."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone():
        return
    with contextlib.suppress(errors.DuplicateObject, errors.UniqueViolation):
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))


LEAST_PRIVILEGE_SQL = Path(__file__).resolve().parents[1] / "ops" / "least_privilege.sql"
# What ops/least_privilege.sql takes from PUBLIC, as (description, check for a role).
# Each check yields no row when its object does not exist (a managed service may have no
# database named postgres).
_DATABASE_RIGHT = (
    "SELECT has_database_privilege(%(role)s, oid, %(right)s) FROM pg_database"
    " WHERE datname = coalesce(%(database)s, current_database())"
)
_LO_CREATE_RIGHT = "SELECT has_function_privilege(%(role)s, 'lo_create(oid)', 'EXECUTE')"
_Check = tuple[str, LiteralString, dict[str, str | None]]


def _database_right(description: str, right: str, database: str | None) -> _Check:
    return description, _DATABASE_RIGHT, {"right": right, "database": database}


_PUBLIC_RIGHTS: tuple[_Check, ...] = (
    _database_right("TEMPORARY on this database", "TEMP", None),
    _database_right("CONNECT on database postgres", "CONNECT", "postgres"),
    _database_right("CONNECT on database template1", "CONNECT", "template1"),
    ("EXECUTE on lo_create(oid)", _LO_CREATE_RIGHT, {}),
)


def restrict_database(admin_url: str) -> list[str]:
    """Take from PUBLIC the database-wide rights no worker needs (ops/least_privilege.sql);
    return those some worker's group role still holds (this login may not revoke them)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(LEAST_PRIVILEGE_SQL.read_text(encoding="utf-8").encode("utf-8"))
        return [
            description
            for description, check, params in _PUBLIC_RIGHTS
            if any(
                conn.execute(check, {"role": group, **params}).fetchone() == (True,)
                for group in WORKER_ROLES.values()
            )
        ]


def main() -> None:
    settings = load_settings(ProvisionSettings)
    applied = apply_migrations(settings.database_url, settings.database_schema)
    print(f"migrations applied to schema {settings.database_schema}: {applied or 'none new'}")
    left = restrict_database(settings.database_url)
    if left:
        print(
            f"warning: the worker roles still hold {', '.join(left)} (granted to PUBLIC; this "
            "login may not revoke them): run ops/least_privilege.sql as a superuser on this "
            "database"
        )
    for group, url in settings.worker_urls().items():
        ensure_login(settings.database_url, url, group)
        print(f"login for {group} ready")
    topics = project_topics(settings)
    asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, topics))
    print(f"topics ready: {', '.join(t.name for t in topics)}")


if __name__ == "__main__":
    main()
