"""Apply the SQL migrations of ops/migrations, in order, once each.

A dozen lines of our own rather than a framework: the files are plain SQL, each is
applied in one transaction together with its bookkeeping row, and an advisory lock
keeps two workers starting at once from racing.
"""

import argparse
import os
from pathlib import Path

import psycopg
from psycopg import sql

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
