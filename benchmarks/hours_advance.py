"""What the closed days' hours of day cost the baseline worker once a day (ops/migrations/016).

    .venv/bin/python -m benchmarks.hours_advance --rows 1000000 3000000 --days 5

The rows of benchmarks/recompute.py (20 categories, 2,000 merchants, 2 currencies, spread
over 60 days) loaded into a scratch schema of its own, then at each size:

- the backfill: `baseline_hours_advance` over a 30-day window's 28 closed days, tables empty
  (what the first recompute after migration 016 does);
- the daily advance, `--days` times in turn: the window moved on by a day (one day read
  from `transactions`, one dropped, the window's sum moved by both), timed alone and within
  the whole `baseline_window_advance` (the bins' re-sum of 015 plus the hours);
- a repeated call on the same days (nothing stale: the check and the window's sum).

Then the recompute's reads alone (the hours' one against the moments' and histograms'), and
`--rounds` recomputes (`Recomputer.run`, as benchmarks.recompute times it) with hour levels on
and off in turn, after one that moves the window to today. Needs DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS. The schema is dropped at the end.
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from baseline_worker.compute import (
    AGGREGATE_SQL,
    HISTOGRAM_SQL,
    HOURS_SQL,
    OPEN_DAYS,
    window_days,
)
from baseline_worker.tail import TailFit
from benchmarks.recompute import DAYS, drop_schema, load_rows, reset_schema, time_recomputes

WINDOW_DAYS = 30


def closed_days(today: date) -> tuple[date, date]:
    return today - timedelta(days=WINDOW_DAYS - 1), today - timedelta(days=OPEN_DAYS)


def timed(conn: psycopg.Connection[Any], query: str, days: tuple[date, date]) -> float:
    started = time.perf_counter()
    conn.execute(query.encode(), days)
    return time.perf_counter() - started


def measure_size(conn: psycopg.Connection[Any], today: date, moves: int) -> dict[str, Any]:
    """Backfill a window ending `moves` days before `today`, then move it day by day."""
    hours = "SELECT baseline_hours_advance(%s, %s)"
    start = today - timedelta(days=moves)
    conn.execute(
        b"TRUNCATE baseline_rollup_hours, baseline_window_hour_sums, baseline_window_hours"
    )
    backfill = timed(conn, hours, closed_days(start))
    daily, whole, repeat = [], [], []
    for day in range(1, moves + 1):
        window = closed_days(start + timedelta(days=day))
        if day % 2:  # alternately the hours alone and the whole daily move
            daily.append(timed(conn, hours, window))
        else:
            whole.append(timed(conn, "SELECT baseline_window_advance(%s, %s)", window))
        repeat.append(timed(conn, hours, window))
    stored = conn.execute(
        b"SELECT (SELECT count(*) FROM baseline_rollup_hours),"
        b" (SELECT count(DISTINCT (scope_kind, scope_name, currency))"
        b"  FROM baseline_window_hours),"
        b" pg_total_relation_size('baseline_rollup_hours'),"
        b" (SELECT count(*) FROM transactions WHERE transaction_date >= %s"
        b"  AND transaction_date < %s)",
        (
            datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC),
            datetime.combine(today, datetime.min.time(), UTC),
        ),
    ).fetchone()
    assert stored is not None
    return {
        "backfill_28_days_s": backfill,
        "daily_hours_s": daily,
        "daily_window_advance_s": whole,
        "repeat_no_stale_day_s": repeat,
        "scope_days_stored": stored[0],
        "scopes": stored[1],
        "scope_days_bytes": stored[2],
        "rows_in_one_day": stored[3],
    }


_READS = AGGREGATE_SQL + ";" + HISTOGRAM_SQL


def time_query(
    conn: psycopg.Connection[Any], query: str, now: datetime, rounds: int
) -> list[float]:
    first, last = window_days(now, WINDOW_DAYS)
    days = {"first_day": first, "last_day": last, "closed_last": last - timedelta(OPEN_DAYS)}
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for statement in query.split(";"):
            conn.execute(statement.encode(), days).fetchall()
        timings.append(time.perf_counter() - started)
    return timings


def recomputes(
    url: str, bootstrap: str, rounds: int, now: datetime, schema: str
) -> tuple[list[float], list[float]]:
    """`Recomputer.run` with hour levels on and off in turn, after one that moves the window."""
    asyncio.run(time_recomputes(url, bootstrap, 1, now, schema))
    on, off = [], []
    for _ in range(rounds):
        on += asyncio.run(time_recomputes(url, bootstrap, 1, now, schema))
        off += asyncio.run(
            time_recomputes(url, bootstrap, 1, now, schema, TailFit(hour_levels=False))
        )
    return on, off


def ms(values: Sequence[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"median {statistics.median(values) * 1000:.0f} ms [{low:.0f}-{high:.0f}]"


def report(rows: int, figures: dict[str, Any]) -> None:
    print(
        f"{rows:,} rows ({figures['rows_in_one_day']:,} a day, {figures['scopes']} scopes):"
        f" backfill of 28 days {figures['backfill_28_days_s']:.2f} s; daily hours"
        f" {ms(figures['daily_hours_s'])}; whole daily window advance"
        f" {ms(figures['daily_window_advance_s'])}; repeated call"
        f" {ms(figures['repeat_no_stale_day_s'])}; {figures['scope_days_stored']:,} scope-days"
        f" stored in {figures['scope_days_bytes'] / 1e6:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--days", type=int, default=5, help="daily moves timed at each size")
    parser.add_argument("--rounds", type=int, default=5, help="recomputes timed at each size")
    args = parser.parse_args()
    url, schema = os.environ["DATABASE_URL"], f"bench_hours_{uuid.uuid4().hex[:8]}"
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    now = datetime.now(UTC)
    assert args.days < DAYS - WINDOW_DAYS  # every window moved through holds rows
    reset_schema(url, schema)
    try:
        have = 0
        for rows in sorted(args.rows):
            load_seconds = load_rows(url, have, rows, now, schema)
            have = rows
            print(f"{rows:,} rows loaded ({load_seconds:.0f} s)")
            with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as c:
                report(rows, measure_size(c, now.date(), args.days))
                print(f"  the hours' read alone: {ms(time_query(c, HOURS_SQL, now, 7))};")
                print(f"  moments and histograms: {ms(time_query(c, _READS, now, 7))}")
            on, off = recomputes(url, bootstrap, args.rounds, now, schema)
            print(f"  recompute, hour levels on: {ms(on)}; off (the hours still read): {ms(off)}")
    finally:
        drop_schema(url, schema)


if __name__ == "__main__":
    main()
