"""Apply the SQL migrations of ops/migrations, in order, once each; or check they were.

A dozen lines of our own rather than a framework: the files are plain SQL, each is
applied in one transaction together with its bookkeeping row, and an advisory lock
keeps two workers starting at once from racing.

Only the schema's owner applies them (`jalytics-migrate`, `jalytics-provision`). A worker
logs in with no right to change the schema, so at start-up it only checks that every
migration it knows is applied, and stops with what to run when one is not
(`MIGRATE_ON_START=true` makes a worker that logs in as the owner apply them instead).
"""

import argparse
import logging
import os
from pathlib import Path

import psycopg
from psycopg import errors, sql

from shared.settings import CommonSettings

log = logging.getLogger(__name__)
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "ops" / "migrations"
_LOCK_KEY = 0x4A414C59  # "JALY"


def migration_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("[0-9][0-9][0-9]_*.sql"))


def apply_migrations(database_url: str, schema: str, directory: Path = DEFAULT_DIR) -> list[str]:
    """Create the schema if needed and apply every migration not applied yet; return their names."""
    applied: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in migration_files(directory):
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8").encode("utf-8"))
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                applied.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


class SchemaNotReady(RuntimeError):
    """The schema lacks a migration this code needs; the message says what to run."""


_RUN = (
    "run `jalytics-migrate` (or `jalytics-provision`) with DATABASE_URL set to the schema "
    "owner's login, or set MIGRATE_ON_START=true on a worker that logs in as the owner"
)


def check_migrated(database_url: str, schema: str, directory: Path = DEFAULT_DIR) -> None:
    """Raise SchemaNotReady unless every migration in `directory` is applied to `schema`."""
    table = sql.SQL("SELECT name FROM {}.schema_migrations").format(sql.Identifier(schema))
    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            done = {row[0] for row in conn.execute(table)}
        except errors.UndefinedTable:
            done = set()
        except errors.InsufficientPrivilege:
            # Not migrated, or migrated before the roles' grants (006) existed.
            raise SchemaNotReady(
                f"role {conn.info.user} may not read schema {schema}: it is not migrated up to "
                f"the grants of the workers' roles; {_RUN}"
            ) from None
    missing = [path.name for path in migration_files(directory) if path.name not in done]
    if missing:
        raise SchemaNotReady(f"schema {schema} lacks migration(s) {', '.join(missing)}: {_RUN}")


def prepare_schema(settings: CommonSettings) -> None:
    """At a worker's start-up: apply the migrations (MIGRATE_ON_START) or check them."""
    try:
        if settings.migrate_on_start:
            apply_migrations(settings.database_url, settings.database_schema)
        else:
            check_migrated(settings.database_url, settings.database_schema)
    except SchemaNotReady as exc:
        log.critical("database schema not ready", extra={"error": str(exc)})
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description="Apply Jalytics' SQL migrations.")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--schema", default=os.environ.get("DATABASE_SCHEMA", "public"))
    args = parser.parse_args()
    if not args.database_url:
        parser.error("DATABASE_URL is not set (or pass --database-url)")
    applied = apply_migrations(args.database_url, args.schema)
    print(
        f"applied {len(applied)} migration(s) to schema {args.schema}: {', '.join(applied) or '-'}"
    )


if __name__ == "__main__":
    main()
