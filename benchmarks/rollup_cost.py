"""What the rollup trigger adds to the detector's write: 1,000-row inserts into `transactions`
over 2,000 merchants, each in one of 20 categories (ops/migrations/025 keeps which), dated
today (a live stream), each in its own transaction and timed from the client, trigger
included; median of `--inserts`.

A scratch schema, migrated, with the baseline window moved first as the baseline worker does
(so a trigger that sums the window has a window to sum into); dropped afterwards.

    .venv/bin/python -m benchmarks.rollup_cost --inserts 30
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import psycopg

from baseline_worker.compute import advance_window
from benchmarks.harness import connect, cpu_seconds, drop_schema
from shared.migrations import apply_migrations

_INSERT = """
INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,
                          anomaly, scored_at)
SELECT gen_random_uuid(), round((exp(random() * 4))::numeric + 1, 2), 'EUR',
       'category-' || (m %% 20), 'merchant-' || m,
       now() - random() * (now() - date_trunc('day', now())), false, now()
FROM (SELECT (random() * 1999)::int AS m FROM generate_series(1, %s)) AS drawn
"""


async def _advance(env: dict[str, str]) -> None:
    conn = await psycopg.AsyncConnection.connect(
        env["DATABASE_URL"], autocommit=True, options=f"-c search_path={env['DATABASE_SCHEMA']}"
    )
    async with conn:
        await advance_window(conn, datetime.now(UTC).date(), 30)


def measure(inserts: int, rows: int) -> tuple[list[float], list[float]]:
    """Milliseconds of each insert: wall clock at the client, and CPU of the backend (from
    /proc: far less sensitive to neighbours on a shared machine)."""
    schema = f"bench_rollup_{uuid.uuid4().hex[:8]}"
    env = {"DATABASE_URL": os.environ["DATABASE_URL"], "DATABASE_SCHEMA": schema}
    apply_migrations(env["DATABASE_URL"], env["DATABASE_SCHEMA"])
    try:
        asyncio.run(_advance(env))
        timings, cpu = [], []
        with connect(env) as conn:
            conn.execute(_INSERT, (rows,))  # warm-up: plans, first pages
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            backend = int(row[0]) if row else 0
            for _ in range(inserts):
                started, used = time.perf_counter(), cpu_seconds(backend)
                conn.execute(_INSERT, (rows,))
                timings.append(1000 * (time.perf_counter() - started))
                cpu.append(1000 * (cpu_seconds(backend) - used))
        return timings, cpu
    finally:
        drop_schema(env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inserts", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    timings, cpu = measure(args.inserts, args.rows)
    print(
        f"{args.rows}-row insert: wall median {statistics.median(timings):.1f} ms "
        f"(min {min(timings):.1f}, max {max(timings):.1f}, {args.inserts} inserts); "
        # The mean: /proc counts CPU in 10 ms ticks, too coarse for a median of one insert.
        f"backend CPU mean {statistics.mean(cpu):.1f} ms"
    )


if __name__ == "__main__":
    main()
