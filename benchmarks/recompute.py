"""Baseline recompute time against a large transactions table.

    .venv/bin/python -m benchmarks.recompute --rows 1000000 10000000 --rounds 5
    .venv/bin/python -m benchmarks.recompute --rows 1000000 --rounds 4 --keep   # then again,
        # from another checkout: the same rows timed before and after a change

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (e.g. `eval "$(ops/postgres.sh start)"` and
`eval "$(ops/kafka.sh start)"`). Loads synthetic transactions into a scratch schema (the
rollup trigger of migration 002 maintains the daily sums as they load, as in production),
then times the real `Recomputer.run` (aggregate + history + publish + bookkeeping) in the
steady state, and for comparison the full-scan aggregation the rollup replaces. The first
recomputes over freshly loaded rows are a backfill's (every closed day's hours and medians
summed from `transactions`, a time budget at a time: ops/migrations/021); they run first,
untimed, until no closed day is pending (`--backlog` times that catch-up itself).
"""

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry
from psycopg import OperationalError, sql
from psycopg_pool import AsyncConnectionPool

from baseline_worker.metrics import BaselineMetrics
from baseline_worker.recompute import DEFAULT_FIT, Recomputer
from baseline_worker.tail import TailFit
from benchmarks.stats import Metric, Outcome
from shared.db import open_pool
from shared.kafka import TopicSpec, ensure_topics, make_producer
from shared.migrations import apply_migrations

SCHEMA = "bench_recompute"
CATEGORIES, MERCHANTS, DAYS = 20, 2_000, 60
CHUNK = 1_000_000

# Synthetic rows: 20 categories, 2,000 merchants, 2 currencies, 60 days, log-normal-ish amounts;
# each judged against a baseline (an id, as the detector stores it), or with `--unjudged`
# none: a backfill scored before any baseline existed, which the recompute judges at the fit
# (ops/migrations/023).
_LOAD_SQL = """
INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,
                          anomaly, scored_at, baseline_id)
SELECT gen_random_uuid(),
       round((exp(3 + random() * 2))::numeric, 2) + 0.01,
       CASE WHEN g %% 5 = 0 THEN 'EUR' ELSE 'USD' END,
       'category-' || (g %% {categories}),
       'merchant-' || (g %% {merchants}),
       %(now)s::timestamptz - (random() * {days}) * interval '1 day',
       false, now(), CASE WHEN %(unjudged)s THEN NULL ELSE gen_random_uuid() END
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
"""

_FULL_SCAN_SQL = """
SELECT count(*), avg(amount), stddev_samp(amount)
FROM transactions
WHERE transaction_date >= %(since)s AND NOT anomaly
GROUP BY GROUPING SETS ((category, currency), (merchant, currency))
"""


def reset_schema(url: str, schema: str = SCHEMA) -> None:
    drop_schema(url, schema)
    apply_migrations(url, schema)


def drop_schema(url: str, schema: str = SCHEMA) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def load_rows(
    url: str, have: int, want: int, now: datetime, schema: str = SCHEMA, unjudged: bool = False
) -> float:
    """Grow the table from `have` to `want` rows; return the seconds it took."""
    started = time.perf_counter()
    query = _LOAD_SQL.format(categories=CATEGORIES, merchants=MERCHANTS, days=DAYS)
    with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
        for start in range(have, want, CHUNK):
            stop = min(start + CHUNK, want) - 1
            params = {"now": now, "start": start, "stop": stop, "unjudged": unjudged}
            conn.execute(query.encode(), params)
        conn.execute(b"VACUUM ANALYZE transactions")
        conn.execute(b"VACUUM ANALYZE baseline_rollup")
    return time.perf_counter() - started


def time_full_scan(url: str, now: datetime, schema: str = SCHEMA) -> float:
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        started = time.perf_counter()
        conn.execute(_FULL_SCAN_SQL, {"since": now - timedelta(days=30)}).fetchall()
        return time.perf_counter() - started


@dataclass(frozen=True)
class Round:
    """One recompute: wall seconds, and the CPU seconds of this process and of the pool's
    PostgreSQL backends (None when the server's processes cannot be read: not local). On a
    shared machine the CPU moves far less than the wall from run to run."""

    wall: float
    python_cpu: float
    postgres_cpu: float | None


async def time_recomputes(*args: Any, **kwargs: Any) -> list[float]:
    """The wall seconds of `measure_recomputes` (same arguments)."""
    return [r.wall for r in await measure_recomputes(*args, **kwargs)]


async def measure_recomputes(
    url: str,
    bootstrap: str,
    rounds: int,
    now: datetime,
    schema: str = SCHEMA,
    fit: TailFit = DEFAULT_FIT,
) -> list[Round]:
    topic = f"{schema}-baselines"
    await ensure_topics(bootstrap, [TopicSpec(topic, 3, 1, {"cleanup.policy": "compact"})])
    # Both connections opened up front, so that their server processes are known.
    pool = await open_pool(url, schema, min_size=2, max_size=2)
    producer = make_producer(bootstrap, transactional_id=f"{schema}-baselines")
    await producer.start()
    try:
        async with pool.connection() as first, pool.connection() as second:
            backends = [first.info.backend_pid, second.info.backend_pid]
        recomputer = Recomputer(
            pool, producer, topic, 30, BaselineMetrics.create(CollectorRegistry()), fit
        )
        await _catch_up(pool, recomputer, now)
        measured = []
        for _ in range(rounds):
            started, cpu, server = time.perf_counter(), time.process_time(), _cpu(backends)
            result = await recomputer.run(now)
            server_after = _cpu(backends)
            measured.append(
                Round(
                    time.perf_counter() - started,
                    time.process_time() - cpu,
                    None if server is None or server_after is None else server_after - server,
                )
            )
        print(f"  scopes published per recompute: {len(result.published)}")
        return measured
    finally:
        await producer.stop()
        await pool.close()


# More than the benchmark's 60 days take, a day a step at least (ops/migrations/021).
_MOST_CATCH_UP_STEPS = 100


async def _catch_up(pool: AsyncConnectionPool, recomputer: Recomputer, now: datetime) -> None:
    """Recompute until no closed day is pending: a freshly loaded table's every closed day
    is stale, and each recompute works through them within a time budget (migration 021),
    so the first recomputes are a backfill's, once, not the steady state timed after."""
    started, steps = time.perf_counter(), 0
    while await _days_pending(pool, or_never_moved=True):
        if steps == _MOST_CATCH_UP_STEPS:
            raise RuntimeError(f"closed days still pending after {steps} recomputes")
        await recomputer.run(now)
        steps += 1
    if steps:
        took = time.perf_counter() - started
        print(f"  caught up with the closed days: {steps} recompute(s), {took:.1f}s (not timed)")


async def _days_pending(pool: AsyncConnectionPool, or_never_moved: bool = False) -> bool:
    """Whether closed days are left for the next recompute; `or_never_moved`: or the window
    has never moved (a freshly loaded table, whose first move finds every day stale)."""
    query = "SELECT days_pending OR (%s AND first_day IS NULL) FROM baseline_window"
    async with pool.connection() as conn:
        row = await (await conn.execute(query, (or_never_moved,))).fetchone()
    return bool(row and row[0])


# What the window's closed days make once a day (ops/migrations/016-019): emptied, with the
# window never moved, every closed day is stale at once, as on a first start on a loaded table.
_CLOSED_DAYS_TABLES = (
    "baseline_window_bins",
    "baseline_rollup_hours",
    "baseline_window_hour_sums",
    "baseline_window_hours",
    "baseline_window_weekdays",
    "baseline_rollup_medians",
    "baseline_window_medians",
)


@dataclass(frozen=True)
class CatchUp:
    wall: float
    published: int | None  # None: the recompute failed (e.g. cut at its bound)
    error: str | None
    days_pending: bool


async def measure_backlog(
    url: str, bootstrap: str, now: datetime, schema: str, bound: float, most: int
) -> list[CatchUp]:
    """Recomputes from a backlog of every closed day until none is pending (or `most`), the
    pool's bound (DATABASE_TIMEOUT_SECONDS) at `bound`: each one's time and outcome."""
    with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
        conn.execute(f"TRUNCATE {', '.join(_CLOSED_DAYS_TABLES)}")
        conn.execute("UPDATE baseline_window SET first_day = NULL, last_day = NULL")
    topic = f"{schema}-baselines"
    await ensure_topics(bootstrap, [TopicSpec(topic, 3, 1, {"cleanup.policy": "compact"})])
    pool = await open_pool(url, schema, min_size=1, max_size=2, connection_timeout=bound)
    producer = make_producer(bootstrap, transactional_id=f"{schema}-baselines")
    await producer.start()
    rounds: list[CatchUp] = []
    try:
        recomputer = Recomputer(
            pool, producer, topic, 30, BaselineMetrics.create(CollectorRegistry()), DEFAULT_FIT
        )
        for _ in range(most):
            started = time.perf_counter()
            try:
                published, error = len((await recomputer.run(now)).published), None
            except OperationalError as exc:
                published, error = None, repr(exc)
            wall = time.perf_counter() - started
            rounds.append(CatchUp(wall, published, error, await _days_pending(pool)))
            print(f"  {rounds[-1]}")
            if published is not None and not rounds[-1].days_pending:
                break
    finally:
        await producer.stop()
        await pool.close()
    return rounds


def _cpu(pids: list[int]) -> float | None:
    """User + system CPU seconds of these (local) processes, from /proc."""
    try:
        ticks = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def summarise(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure_sizes(
    rows_list: list[int],
    rounds: int,
    schema: str = SCHEMA,
    keep: bool = False,
    unjudged: bool = False,
) -> list[dict[str, Any]]:
    """Grow the table through each size in turn, timing `rounds` recomputes at each; the
    scratch schema is dropped at the end unless `keep`. A kept schema that already holds the
    largest size is timed again without loading (`now` as when it was loaded): before and
    after a change, from two checkouts, on the same rows."""
    url, bootstrap = os.environ["DATABASE_URL"], os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    kept = _kept(url, schema, max(rows_list)) if keep else None
    now = kept or datetime.now(UTC)
    if kept is None:
        reset_schema(url, schema)
    results: list[dict[str, Any]] = []
    have = 0
    try:
        for rows in sorted(rows_list):
            if kept is None:
                load_seconds = load_rows(url, have, rows, now, schema, unjudged)
                _remember(url, schema, rows, now)
                print(f"{rows:,} rows loaded (+{load_seconds:.1f}s)")
            elif rows != max(rows_list):
                continue
            have = rows
            measured = asyncio.run(measure_recomputes(url, bootstrap, rounds, now, schema))
            scans = [time_full_scan(url, now, schema) for _ in range(3)]
            results.append(_result(rows, rounds, measured, scans))
    finally:
        if not keep:
            drop_schema(url, schema)
    return results


def _result(rows: int, rounds: int, measured: list[Round], scans: list[float]) -> dict[str, Any]:
    recompute = [r.wall for r in measured]
    python_cpu = [r.python_cpu * 1000 for r in measured]
    postgres_cpu = [r.postgres_cpu * 1000 for r in measured if r.postgres_cpu is not None]
    print(
        f"  recompute (rollup): median {statistics.median(recompute) * 1000:.1f} ms "
        f"[{min(recompute) * 1000:.1f}-{max(recompute) * 1000:.1f}] over {rounds} rounds: "
        + " ".join(f"{seconds * 1000:.0f}" for seconds in recompute)
    )
    print(
        f"  CPU per recompute: this process median {statistics.median(python_cpu):.0f} ms, "
        + (
            f"PostgreSQL median {statistics.median(postgres_cpu):.0f} ms"
            if postgres_cpu
            else "PostgreSQL not readable here"
        )
    )
    print(f"  full-scan aggregate it replaces: median {statistics.median(scans):.2f} s")
    return {
        "rows": rows,
        "recompute_seconds": summarise(recompute),
        "full_scan_seconds": summarise(scans),
        "rounds": rounds,
        "recompute_rounds": recompute,
        "python_cpu_ms": python_cpu,
        "postgres_cpu_ms": postgres_cpu,
    }


_META = "bench_recompute_loaded"


def _remember(url: str, schema: str, rows: int, now: datetime) -> None:
    with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_META} (rows bigint, now timestamptz)")
        conn.execute(f"DELETE FROM {_META}")
        conn.execute(f"INSERT INTO {_META} VALUES (%s, %s)", (rows, now))


def _kept(url: str, schema: str, rows: int) -> datetime | None:
    """When a kept schema holding `rows` rows was loaded (None: load it afresh)."""
    with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as conn:
        if conn.execute("SELECT to_regclass(%s)", (f"{schema}.{_META}",)).fetchone() == (None,):
            return None
        row = conn.execute(f"SELECT now FROM {_META} WHERE rows = %s", (rows,)).fetchone()
    return None if row is None else row[0]


def measure(rows_list: list[int], rounds: int) -> Outcome:
    """For the suite: the recompute time at each size, in milliseconds."""
    results = measure_sizes(rows_list, rounds)
    metrics = [
        Metric(
            "baseline recompute",
            f"{r['rows']:,} stored transactions",
            "ms",
            [seconds * 1000 for seconds in r["recompute_rounds"]],
        )
        for r in results
    ]
    return Outcome(results, metrics)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/recompute.json"))
    parser.add_argument("--schema", default=SCHEMA, help="the scratch schema (dropped after)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the scratch schema, and time it again if it holds the rows already",
    )
    parser.add_argument(
        "--backlog",
        type=float,
        metavar="BOUND",
        help="on a kept schema: recomputes from a backlog of every closed day, the database"
        " bound at BOUND seconds, until none is pending (ops/migrations/021)",
    )
    parser.add_argument(
        "--unjudged",
        action="store_true",
        help="rows scored before any baseline existed (a backfill): judged at the fit",
    )
    args = parser.parse_args()
    if args.backlog is not None:
        backlog(args)
        return
    results = measure_sizes(args.rows, args.rounds, args.schema, args.keep, args.unjudged)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": os.uname().nodename,
                "nproc": os.cpu_count(),
                "at": datetime.now(UTC).isoformat(),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"written {args.json}")


def backlog(args: argparse.Namespace) -> None:
    url, bootstrap = os.environ["DATABASE_URL"], os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    now = _kept(url, args.schema, max(args.rows))
    if now is None:
        raise SystemExit(f"--backlog needs a kept schema holding {max(args.rows):,} rows (--keep)")
    apply_migrations(url, args.schema)  # a schema kept from before a migration gets it
    rounds = asyncio.run(measure_backlog(url, bootstrap, now, args.schema, args.backlog, 40))
    result = {
        "rows": max(args.rows),
        "bound_seconds": args.backlog,
        "rounds": [asdict(r) for r in rounds],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
