"""The hours of day of the window's closed days (ops/migrations/016), summed by the baseline
worker once a day from `transactions`: which days' rows they hold as the window moves, under
the baseline worker's own role and a session in another time zone."""

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from baseline_worker.compute import advance_window, budget_closed_days
from baseline_worker.metrics import BaselineMetrics
from baseline_worker.recompute import Recomputer
from baseline_worker.settings import BaselineSettings
from baseline_worker.stats import TrendThrough
from baseline_worker.tail import TailFit
from schemas import Baseline
from shared.db import open_pool
from shared.kafka import make_producer
from tests.conftest import Isolated

pytestmark = pytest.mark.integration

DAYS = 5  # a short window: closed days are the 3 before yesterday
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)  # window 03-06..03-10, closed 03-06..03-08


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (transaction_date, amount, severity): each commented with the UTC day and hour it counts at.
ROWS = [
    (at("2026-03-05T23:59:59.999+00:00"), "1.00", None),  # 03-05: before the window
    (at("2026-03-06T01:30:00+02:00"), "2.00", None),  # 03-05 23:30 UTC: before the window
    (at("2026-03-06T10:00:00+00:00"), "3.00", None),  # 03-06 h10
    (at("2026-03-07T05:10:00+00:00"), "4.00", "medium"),  # 03-07 h5 (medium feeds baselines)
    (at("2026-03-07T05:20:00+00:00"), "400.00", "high"),  # never: judged high
    (at("2026-03-08T00:00:00+00:00"), "5.00", None),  # 03-08 h0, midnight exactly
    (at("2026-03-07T22:15:00-03:00"), "6.00", None),  # 03-08 01:15 UTC: h1
    (at("2026-03-08T23:30:00-05:00"), "7.00", None),  # 03-09 04:30 UTC: open until 03-11
    (at("2026-03-09T00:00:00+00:00"), "8.00", None),  # 03-09 h0: open until 03-11
    (at("2026-03-10T09:00:00+00:00"), "9.00", None),  # today: open
]


def insert(db: Any, when: datetime, amount: str, severity: str | None = None) -> None:
    db.execute(
        "INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,"
        " anomaly, severity, scored_at) VALUES (gen_random_uuid(), %s, 'USD', 'food', 'Cafe',"
        " %s, %s, %s, now())",
        (amount, when, severity is not None, severity),
    )


@pytest.fixture
async def baseline_pool(isolated: Isolated) -> AsyncIterator[AsyncConnectionPool]:
    """The baseline worker's role, in a session whose time zone is not UTC (+05:45)."""

    async def far_east(conn: Any) -> None:
        await conn.execute("SET TIME ZONE 'Asia/Kathmandu'")
        await conn.commit()

    pool = await open_pool(isolated.worker_urls["baseline"], isolated.schema, configure=far_east)
    yield pool
    await pool.close()


async def advance(
    pool: AsyncConnectionPool, now: datetime, budget_seconds: float | None = None
) -> None:
    async with pool.connection() as conn, conn.transaction():
        if budget_seconds is not None:
            await budget_closed_days(conn, budget_seconds)
        await advance_window(conn, now.date(), DAYS)


def window_hours(db: Any, kind: str = "merchant") -> dict[int, tuple[int, float]]:
    row = db.execute(
        "SELECT hours, sample_counts, log_totals FROM baseline_window_hours"
        " WHERE scope_kind = %s AND scope_name = %s AND currency = 'USD'",
        (kind, "food" if kind == "category" else "Cafe"),
    ).fetchone()
    return {} if row is None else {h: (n, t) for h, n, t in zip(*row, strict=True)}


def hours_of(**amounts: list[str]) -> dict[int, tuple[int, float]]:
    """{hour: (count, sum of ln(amount))} from `h5=["4.00"]`-style arguments."""
    return {
        int(key[1:]): (len(values), sum(math.log(float(v)) for v in values))
        for key, values in amounts.items()
    }


def assert_hours(got: dict[int, tuple[int, float]], want: dict[int, tuple[int, float]]) -> None:
    assert {h: n for h, (n, _) in got.items()} == {h: n for h, (n, _) in want.items()}
    for hour, (_, log_total) in want.items():
        assert got[hour][1] == pytest.approx(log_total, rel=1e-12)


def stored(db: Any) -> list[tuple[Any, ...]]:
    days: list[tuple[Any, ...]] = db.execute(
        "SELECT * FROM baseline_rollup_hours ORDER BY scope_kind, scope_name, currency, day"
    ).fetchall()
    sums: list[tuple[Any, ...]] = db.execute(
        "SELECT * FROM baseline_window_hour_sums ORDER BY scope_kind, scope_name, currency, hour"
    ).fetchall()
    summed: list[tuple[Any, ...]] = db.execute(
        "SELECT * FROM baseline_window_hours ORDER BY scope_kind, scope_name, currency"
    ).fetchall()
    return days + sums + summed


async def insert_rows_and_advance(db: Any, pool: AsyncConnectionPool) -> None:
    for when, amount, severity in ROWS:
        insert(db, when, amount, severity)
    await advance(pool, NOW)


async def test_the_daily_advance_adds_and_drops_the_right_days_hours(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    await insert_rows_and_advance(db, baseline_pool)
    first = hours_of(h10=["3.00"], h5=["4.00"], h0=["5.00"], h1=["6.00"])
    assert_hours(window_hours(db), first)
    assert_hours(window_hours(db, "category"), first)  # both scopes, one scan
    days = db.execute("SELECT DISTINCT day FROM baseline_rollup_hours ORDER BY day").fetchall()
    assert [d for (d,) in days] == [NOW.date() - timedelta(days=n) for n in (4, 3, 2)]

    await advance(baseline_pool, NOW + timedelta(hours=11))  # the same day: nothing moves
    assert_hours(window_hours(db), first)

    # A day later 03-06 leaves, 03-09 closes: its midnight row and the one dated 03-08 in
    # UTC-5 (03-09 in UTC) join.
    await advance(baseline_pool, NOW + timedelta(days=1))
    second = hours_of(h5=["4.00"], h0=["5.00", "8.00"], h1=["6.00"], h4=["7.00"])
    assert_hours(window_hours(db), second)


async def test_a_late_row_joins_at_the_next_advance_and_only_changed_days_are_touched(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    await insert_rows_and_advance(db, baseline_pool)
    # A closed day's sums are not read again while its count matches the daily rollup's:
    # mark 03-07's stored sum, which a re-read would overwrite.
    db.execute("UPDATE baseline_rollup_hours SET log_totals = '{100}' WHERE day = '2026-03-07'")
    # Nor is the window's sum made afresh: the move adds and takes out the changed days only,
    # so a mark on 03-07's hour in the sum stays too (a re-sum would read 100 from the day).
    db.execute("UPDATE baseline_window_hour_sums SET log_total = 50 WHERE hour = 5")
    insert(db, at("2026-03-08T13:00:00+01:00"), "10.00")  # late, for the closed 03-08 h12
    await advance(baseline_pool, NOW + timedelta(days=1))
    marked = db.execute("SELECT log_totals FROM baseline_rollup_hours WHERE day = '2026-03-07'")
    assert marked.fetchall() == [([100.0],), ([100.0],)]  # 03-07: not read again
    got = window_hours(db)
    assert got[5] == (1, 50.0)
    assert_hours({12: got[12]}, hours_of(h12=["10.00"]))  # 03-08: read again, late row in


async def test_the_backfill_of_an_empty_table_is_idempotent(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    await insert_rows_and_advance(db, baseline_pool)
    filled = stored(db)
    assert filled
    # Called again on the same days (a retried transaction, a second worker): the same rows.
    db.execute("SELECT baseline_hours_advance('2026-03-06', '2026-03-08')")
    assert stored(db) == filled
    # A window's sum that disagrees with its days' (edited by hand) is made afresh.
    db.execute("DELETE FROM baseline_window_hour_sums WHERE hour = 10")
    db.execute("SELECT baseline_hours_advance('2026-03-06', '2026-03-08')")
    assert stored(db) == filled
    # Emptied (a fresh deployment: migration 016 leaves the window to be moved afresh).
    db.execute("TRUNCATE baseline_rollup_hours, baseline_window_hour_sums, baseline_window_hours")
    db.execute("UPDATE baseline_window SET first_day = NULL, last_day = NULL")
    await advance(baseline_pool, NOW)
    assert stored(db) == filled


def closed_days_state(db: Any) -> list[tuple[Any, ...]]:
    """The hours (`stored`), the weekdays and the days' medians the window's closed days make."""
    weekdays: list[tuple[Any, ...]] = db.execute(
        "SELECT * FROM baseline_window_weekdays ORDER BY scope_kind, scope_name, currency"
    ).fetchall()
    medians = db.execute(
        "SELECT * FROM baseline_rollup_medians ORDER BY scope_kind, scope_name, currency, day"
    ).fetchall()
    summed = db.execute(
        "SELECT * FROM baseline_window_medians ORDER BY scope_kind, scope_name, currency"
    ).fetchall()
    return [*stored(db), *weekdays, *medians, *summed]


def pending(db: Any) -> bool:
    return bool(db.execute("SELECT days_pending FROM baseline_window").fetchone()[0])


async def test_a_backlog_of_closed_days_is_worked_through_a_day_at_a_time_within_the_budget(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    # A budget spent at once: each move computes one closed day's hours and median (newest
    # first) and leaves the rest pending, instead of all of them in one unit of work that a
    # large table made outlive the bound (then cut, rolled back and retried for ever).
    for when, amount, severity in ROWS:
        insert(db, when, amount, severity)
    done: list[list[Any]] = []
    for _ in range(3):
        await advance(baseline_pool, NOW, budget_seconds=0)
        days = db.execute("SELECT DISTINCT day FROM baseline_rollup_hours ORDER BY day DESC")
        done.append([d for (d,) in days.fetchall()])
    closed = [NOW.date() - timedelta(days=n) for n in (2, 3, 4)]  # 03-08, 03-07, 03-06
    assert done == [closed[:1], closed[:2], closed]
    medians = db.execute("SELECT DISTINCT day FROM baseline_rollup_medians ORDER BY day DESC")
    assert [d for (d,) in medians.fetchall()] == closed
    assert not pending(db)
    # Whole and exact: what one unbudgeted move computes from nothing.
    budgeted = closed_days_state(db)
    db.execute(
        "TRUNCATE baseline_rollup_hours, baseline_window_hour_sums, baseline_window_hours,"
        " baseline_window_weekdays, baseline_rollup_medians, baseline_window_medians"
    )
    db.execute("UPDATE baseline_window SET first_day = NULL, last_day = NULL")
    await advance(baseline_pool, NOW)
    assert not pending(db)
    assert closed_days_state(db) == budgeted
    # Nothing pending and the window where it was: a move does nothing (no lock, no work),
    # though a day is stale (its hours gone); once pending, the next move computes it again.
    db.execute("DELETE FROM baseline_rollup_hours WHERE day = %s", (closed[1],))
    await advance(baseline_pool, NOW + timedelta(hours=1), budget_seconds=0)
    days = db.execute("SELECT DISTINCT day FROM baseline_rollup_hours ORDER BY day DESC")
    assert [d for (d,) in days.fetchall()] == [closed[0], closed[2]]
    db.execute("UPDATE baseline_window SET days_pending = true")
    await advance(baseline_pool, NOW + timedelta(hours=1), budget_seconds=0)
    days = db.execute("SELECT DISTINCT day FROM baseline_rollup_hours ORDER BY day DESC")
    assert [d for (d,) in days.fetchall()] == closed
    assert not pending(db)


# Every 7 minutes for 24 days before NOW: evenings (16-23 UTC) four times dearer.
_SEASONAL = """
INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,
                          anomaly, scored_at)
SELECT gen_random_uuid(),
       round((CASE WHEN extract(hour FROM at AT TIME ZONE 'UTC') >= 16 THEN 40 ELSE 10 END
              * exp(random() * 0.5))::numeric, 2),
       'USD', 'food', 'Cafe', at, false, now()
FROM (SELECT %s::timestamptz - g * interval '7 minutes' AS at
      FROM generate_series(1, 5000) AS g) AS times
"""


async def published_cafe(
    isolated: Isolated,
    hour_levels: bool,
    weekday_levels: bool = True,
    trend_through: TrendThrough = "sharper",
) -> Baseline:
    settings = isolated.settings(
        BaselineSettings,
        baseline_hour_levels=hour_levels,
        baseline_weekday_levels=weekday_levels,
        baseline_trend_through=trend_through,
    )
    pool = await open_pool(settings.database_url, settings.database_schema)
    producer = make_producer(
        settings.kafka_bootstrap_servers, transactional_id=f"tests-hours-{isolated.schema}"
    )
    await producer.start()
    try:
        recomputer = Recomputer(
            pool,
            producer,
            settings.topic_baselines,
            settings.baseline_window_days,
            BaselineMetrics.create(CollectorRegistry()),
            TailFit(
                hour_levels=settings.baseline_hour_levels,
                weekday_levels=settings.baseline_weekday_levels,
                trend_through=settings.baseline_trend_through,
            ),
        )
        published = (await recomputer.run(NOW)).published
    finally:
        await producer.stop()
        await pool.close()
    return next(b for b in published if b.scope.kind == "merchant")


async def test_the_baseline_worker_publishes_hour_levels_from_sql(
    isolated: Isolated, db: Any
) -> None:
    db.execute(_SEASONAL, (NOW,))
    tail = (await published_cafe(isolated, hour_levels=True)).tail
    assert tail is not None and tail.hour_ratios is not None
    assert tail.hour_ratios[20] > 2 * tail.hour_ratios[4]  # evenings read against their level
    off = (await published_cafe(isolated, hour_levels=False)).tail
    assert off is not None and off.hour_ratios is None
