"""The weekdays of the window's closed days (ops/migrations/018), made from the closed days'
hours once a day and when late rows are caught up: which days' rows they hold as the window
moves, under the baseline worker's own role in a session in another time zone."""

import math
from datetime import timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from baseline_worker.compute import aggregate
from tests.conftest import Isolated
from tests.integration.test_hours import (
    DAYS,
    NOW,
    advance,
    at,
    baseline_pool,
    insert,
    insert_rows_and_advance,
    published_cafe,
)

pytestmark = pytest.mark.integration
__all__ = ["baseline_pool"]  # the fixture, shared with test_hours

# test_hours.ROWS by UTC weekday (NOW is Tuesday 2026-03-10; closed days 03-06..03-08):
# Friday 03-06: 3.00; Saturday 03-07: 4.00 (medium; 400.00 judged high never counts);
# Sunday 03-08: 5.00 and 6.00 (22:15 at -03:00 on the 7th); Monday 03-09 (open until the
# 11th): 7.00 (23:30 at -05:00 on the 8th) and 8.00.
FRIDAY, SATURDAY, SUNDAY, MONDAY = 4, 5, 6, 0


def window_weekdays(db: Any, kind: str = "merchant") -> dict[int, tuple[int, float]]:
    row = db.execute(
        "SELECT weekdays, sample_counts, log_totals FROM baseline_window_weekdays"
        " WHERE scope_kind = %s AND scope_name = %s AND currency = 'USD'",
        (kind, "food" if kind == "category" else "Cafe"),
    ).fetchone()
    return {} if row is None else {d: (n, t) for d, n, t in zip(*row, strict=True)}


def weekdays_of(**amounts: list[str]) -> dict[int, tuple[int, float]]:
    names = {"fri": FRIDAY, "sat": SATURDAY, "sun": SUNDAY, "mon": MONDAY}
    return {
        names[key]: (len(values), sum(math.log(float(v)) for v in values))
        for key, values in amounts.items()
    }


def assert_weekdays(got: dict[int, tuple[int, float]], want: dict[int, tuple[int, float]]) -> None:
    assert {d: n for d, (n, _) in got.items()} == {d: n for d, (n, _) in want.items()}
    for weekday, (_, log_total) in want.items():
        assert got[weekday][1] == pytest.approx(log_total, rel=1e-12)


async def test_the_daily_move_adds_and_drops_the_right_days_weekdays(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    await insert_rows_and_advance(db, baseline_pool)
    first = weekdays_of(fri=["3.00"], sat=["4.00"], sun=["5.00", "6.00"])
    assert_weekdays(window_weekdays(db), first)
    assert_weekdays(window_weekdays(db, "category"), first)
    await advance(baseline_pool, NOW + timedelta(hours=11))  # the same day: nothing moves
    assert_weekdays(window_weekdays(db), first)
    # A day later Friday 03-06 leaves and Monday 03-09 closes.
    await advance(baseline_pool, NOW + timedelta(days=1))
    second = weekdays_of(sat=["4.00"], sun=["5.00", "6.00"], mon=["7.00", "8.00"])
    assert_weekdays(window_weekdays(db), second)


async def test_a_late_row_joins_its_weekday_at_the_next_recompute(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    await insert_rows_and_advance(db, baseline_pool)
    insert(db, at("2026-03-08T13:00:00+01:00"), "10.00")  # late, for Sunday 03-08, closed
    # Caught up by the same day's recompute (017's re-sum of the stale scope), no move.
    async with baseline_pool.connection() as conn, conn.transaction():
        stats = {s.scope.label(): s for s in await aggregate(conn, NOW.date(), DAYS)}
    want = weekdays_of(fri=["3.00"], sat=["4.00"], sun=["5.00", "6.00", "10.00"])
    assert_weekdays(window_weekdays(db), want)
    cafe = stats["merchant:Cafe:USD"].weekdays
    assert cafe.counts == (0, 0, 0, 0, 1, 1, 3)  # what the recompute read
    assert cafe.log_totals[SUNDAY] == pytest.approx(want[SUNDAY][1], rel=1e-12)


async def test_the_backfill_reads_the_hours_already_summed(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    """Migration 018's backfill (`baseline_weekdays_rebuild` over the stored hours) gives
    what the daily move gives, and is idempotent, as is a repeated move."""
    await insert_rows_and_advance(db, baseline_pool)
    filled = db.execute("SELECT * FROM baseline_window_weekdays ORDER BY 1, 2, 3").fetchall()
    assert len(filled) == 2
    db.execute("TRUNCATE baseline_window_weekdays")  # as before 018: the hours only
    db.execute("SELECT baseline_weekdays_rebuild()")
    db.execute("SELECT baseline_weekdays_rebuild()")
    assert db.execute("SELECT * FROM baseline_window_weekdays ORDER BY 1, 2, 3").fetchall() == (
        filled
    )
    db.execute("SELECT baseline_hours_advance('2026-03-06', '2026-03-08')")
    assert db.execute("SELECT * FROM baseline_window_weekdays ORDER BY 1, 2, 3").fetchall() == (
        filled
    )
    # Nothing changed since: not rebuilt (a mark on a stored sum stays); a changed day is.
    db.execute("UPDATE baseline_window_weekdays SET log_totals[1] = 100")
    db.execute("SELECT baseline_weekdays_rebuild()")
    assert db.execute("SELECT log_totals[1] FROM baseline_window_weekdays").fetchall() == [
        (100.0,),
        (100.0,),
    ]
    db.execute(
        "UPDATE baseline_rollup_hours SET sample_count = sample_count + 1 WHERE day = '2026-03-07'"
    )
    db.execute("SELECT baseline_weekdays_rebuild()")
    assert db.execute("SELECT log_totals[1] FROM baseline_window_weekdays").fetchall() != [
        (100.0,),
        (100.0,),
    ]


# Every 7 minutes for 24 days before NOW: Saturdays and Sundays (UTC) three times dearer.
_WEEKLY = """
INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,
                          anomaly, scored_at)
SELECT gen_random_uuid(),
       round((CASE WHEN extract(isodow FROM at AT TIME ZONE 'UTC') >= 6 THEN 30 ELSE 10 END
              * exp(random() * 0.5))::numeric, 2),
       'USD', 'food', 'Cafe', at, false, now()
FROM (SELECT %s::timestamptz - g * interval '7 minutes' AS at
      FROM generate_series(1, 5000) AS g) AS times
"""


async def test_the_baseline_worker_publishes_weekday_levels_from_sql(
    isolated: Isolated, db: Any
) -> None:
    db.execute(_WEEKLY, (NOW,))
    tail = (await published_cafe(isolated, hour_levels=True)).tail
    assert tail is not None and tail.weekday_ratios is not None
    assert tail.hour_ratios is None  # nothing by hour
    assert tail.weekday_ratios[SATURDAY] > 2 * tail.weekday_ratios[MONDAY]
    off = (await published_cafe(isolated, hour_levels=True, weekday_levels=False)).tail
    assert off is not None and off.weekday_ratios is None
