"""What the closed days' hours of day cost the baseline worker once a day (ops/migrations/016).

    .venv/bin/python -m benchmarks.hours_advance --rows 1000000 3000000 --days 5

The rows of benchmarks/recompute.py (20 categories, 2,000 merchants, 2 currencies, spread
over 60 days) loaded into a scratch schema of its own, then at each size:

- the backfill: `baseline_hours_advance` over a 30-day window's 28 closed days, tables empty
  (what the first recompute after migration 016 does);
- the daily advance, `--days` times in turn: the window moved on by a day (one day read
  from `transactions`, one dropped, the window's sum moved by both), timed alone and within
  the whole `baseline_window_advance` (the bins' re-sum of 015 plus the hours);
- a repeated call on the same days (nothing stale: the check and the window's sum);
- the weekdays' rebuild from the stored hours alone (ops/migrations/018), which every
  call above includes;
- the closed days' medians alone (ops/migrations/019: their backfill, then each daily move
  before the hours', which then finds them done).

Then the recompute's reads alone (the hours' one against the moments' and histograms'), and
`--rounds` recomputes (`Recomputer.run`, as benchmarks.recompute times it) with the defaults
and with hour levels off (`--median-trend`: the trend through the medians) in turn, after
one that moves the window to today. The loaded rows' dates are random, so a day's rows lie
on almost every page of the table; `--cluster` measures again
with the table in date order, as a live stream stores it. Needs DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS. The schema is dropped at the end.
"""

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from baseline_worker.compute import (
    AGGREGATE_SQL,
    HISTOGRAM_SQL,
    HOURS_SQL,
    MEDIANS_SQL,
    OPEN_DAYS,
    WEEKDAYS_SQL,
    window_days,
)
from baseline_worker.tail import TailFit
from benchmarks.harness import cpu_seconds
from benchmarks.recompute import DAYS, drop_schema, load_rows, reset_schema, time_recomputes

WINDOW_DAYS = 30


def closed_days(today: date) -> tuple[date, date]:
    return today - timedelta(days=WINDOW_DAYS - 1), today - timedelta(days=OPEN_DAYS)


@dataclass
class Timings:
    """Wall clock at the client and CPU of the backend (from /proc: far less sensitive to
    neighbours on a shared machine), in seconds, one entry per call."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        wall, cpu = statistics.median(self.wall), statistics.median(self.cpu)
        spread = f" [{min(self.wall) * 1000:.0f}-{max(self.wall) * 1000:.0f}]"
        return f"{wall * 1000:.0f} ms{spread if len(self.wall) > 1 else ''} (CPU {cpu * 1000:.0f})"


def run(
    conn: psycopg.Connection[Any],
    into: Timings,
    query: str,
    params: Sequence[Any] | Mapping[str, Any],
) -> None:
    row = conn.execute(b"SELECT pg_backend_pid()").fetchone()
    backend = int(row[0]) if row else 0
    started, used = time.perf_counter(), cpu_seconds(backend)
    for statement in query.split(";"):
        conn.execute(statement.encode(), params).fetchall()
    into.wall.append(time.perf_counter() - started)
    into.cpu.append(cpu_seconds(backend) - used)


def measure_size(conn: psycopg.Connection[Any], today: date, moves: int) -> dict[str, Any]:
    """Backfill a window ending `moves` days before `today`, then move it day by day; then
    time the recompute's reads at today's window."""
    hours = "SELECT baseline_hours_advance(%s, %s)"
    # The medians of the closed days (ops/migrations/019) first, alone: the hours' call after
    # them then finds them done (a check of the days' counts).
    medians = "SELECT baseline_medians_of_closed_days(%s, %s)"
    start = today - timedelta(days=moves)
    conn.execute(
        b"TRUNCATE baseline_rollup_hours, baseline_window_hour_sums, baseline_window_hours,"
        b" baseline_rollup_medians, baseline_window_medians"
    )
    conn.execute(b"UPDATE baseline_window SET first_day = NULL, last_day = NULL")
    names = ("backfill", "daily", "whole", "repeat", "weekdays", "medians_backfill", "medians")
    figures = {name: Timings() for name in names}
    run(conn, figures["medians_backfill"], medians, closed_days(start))
    run(conn, figures["backfill"], hours, closed_days(start))
    for day in range(1, moves + 1):
        window = closed_days(start + timedelta(days=day))
        run(conn, figures["medians"], medians, window)
        if day % 2:  # alternately the hours alone and the whole daily move
            run(conn, figures["daily"], hours, window)
        else:
            run(conn, figures["whole"], "SELECT baseline_window_advance(%s, %s)", window)
        run(conn, figures["repeat"], hours, window)
        run(conn, figures["weekdays"], "SELECT baseline_weekdays_rebuild()", ())
    first, last = window_days(today, WINDOW_DAYS)
    days = {"first_day": first, "last_day": last, "closed_last": last - timedelta(OPEN_DAYS)}
    reads = ("hours_read", "weekdays_read", "medians_read", "other_reads")
    figures |= {name: Timings() for name in reads}
    for _ in range(7):
        run(conn, figures["hours_read"], HOURS_SQL, days)
        run(conn, figures["weekdays_read"], WEEKDAYS_SQL, days)
        run(conn, figures["medians_read"], MEDIANS_SQL, days)
        run(conn, figures["other_reads"], AGGREGATE_SQL + ";" + HISTOGRAM_SQL, days)
    return figures | {"stored": stored(conn, today)}


def stored(conn: psycopg.Connection[Any], today: date) -> tuple[int, ...]:
    """Scope-days kept, scopes, bytes of the scope-days, rows in one day of `transactions`."""
    row = conn.execute(
        b"SELECT (SELECT count(*) FROM baseline_rollup_hours),"
        b" (SELECT count(*) FROM baseline_window_hours),"
        b" pg_total_relation_size('baseline_rollup_hours'),"
        b" (SELECT count(*) FROM transactions WHERE transaction_date >= %s"
        b"  AND transaction_date < %s)",
        (
            datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC),
            datetime.combine(today, datetime.min.time(), UTC),
        ),
    ).fetchone()
    assert row is not None
    return tuple(int(value) for value in row)


def recomputes(
    url: str, bootstrap: str, rounds: int, now: datetime, schema: str, other: TailFit
) -> tuple[list[float], list[float]]:
    """`Recomputer.run` with the defaults and with `other` in turn, after one that moves the
    window."""
    asyncio.run(time_recomputes(url, bootstrap, 1, now, schema))
    on, off = [], []
    for _ in range(rounds):
        on += asyncio.run(time_recomputes(url, bootstrap, 1, now, schema))
        off += asyncio.run(time_recomputes(url, bootstrap, 1, now, schema, other))
    return on, off


def report(rows: int, figures: dict[str, Any]) -> None:
    scope_days, scopes, size, per_day = figures["stored"]
    print(
        f"{rows:,} rows ({per_day:,} a day, {scopes} scopes), median wall (backend CPU):\n"
        f"  backfill of 28 days {figures['backfill']}; daily hours {figures['daily']};"
        f" whole daily window advance (bins + hours) {figures['whole']}; repeated call"
        f" {figures['repeat']}; of each, the weekdays' rebuild {figures['weekdays']};"
        f" {scope_days:,} scope-days stored in {size / 1e6:.1f} MB\n"
        f"  the days' medians alone (before each of the above, which then finds them done):"
        f" backfill {figures['medians_backfill']}, daily {figures['medians']}\n"
        f"  the recompute's reads: hours {figures['hours_read']}, weekdays"
        f" {figures['weekdays_read']}, medians {figures['medians_read']}, moments and histograms"
        f" {figures['other_reads']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--days", type=int, default=5, help="daily moves timed at each size")
    parser.add_argument("--rounds", type=int, default=5, help="recomputes timed at each size")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="then also with the table in date order, as a live stream stores it (CLUSTER)",
    )
    parser.add_argument(
        "--median-trend",
        action="store_true",
        help="time the recomputes against the trend through the medians (TailFit.trend_through)"
        "\nrather than against hour levels off",
    )
    args = parser.parse_args()
    args.other = (
        TailFit(trend_through="medians") if args.median_trend else TailFit(hour_levels=False)
    )
    args.other_name = "median trend on" if args.median_trend else "hour levels off"
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
                if args.cluster:
                    # The loaded rows' dates are random: a day's rows lie on almost every
                    # page. A live stream stores them in about date order.
                    c.execute(b"CLUSTER transactions USING transactions_date_idx")
                    c.execute(b"ANALYZE transactions")
                    print("  in date order (CLUSTER):", end=" ")
                    report(rows, measure_size(c, now.date(), args.days))
            defaults, other = recomputes(url, bootstrap, args.rounds, now, schema, args.other)
            print(
                f"  recompute (wall), the defaults: {statistics.median(defaults) * 1000:.0f} ms"
                f" [{min(defaults) * 1000:.0f}-{max(defaults) * 1000:.0f}]; {args.other_name}"
                f" (what it leaves off still read): {statistics.median(other) * 1000:.0f} ms"
                f" [{min(other) * 1000:.0f}-{max(other) * 1000:.0f}]"
            )
    finally:
        drop_schema(url, schema)


if __name__ == "__main__":
    main()
