"""The medians of the window's closed days (ops/migrations/019), computed from the days'
histograms once a day and when late rows are caught up: which days they hold as the window
moves, under the baseline worker's own role in a session in another time zone, and the trend
the baseline worker publishes from them."""

from datetime import date, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from baseline_worker.compute import WEEKDAY_EPOCH, aggregate
from baseline_worker.histogram import histogram
from baseline_worker.stats import day_log_median
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

# test_hours.ROWS by UTC day (closed days 03-06..03-08; 03-09 closes a day later).
FRIDAY, SATURDAY, SUNDAY, MONDAY = (date(2026, 3, d) for d in (6, 7, 8, 9))


def day_medians(db: Any, kind: str = "merchant") -> dict[date, tuple[int, float]]:
    rows = db.execute(
        "SELECT day, sample_count, log_median FROM baseline_rollup_medians"
        " WHERE scope_kind = %s AND scope_name = %s AND currency = 'USD'",
        (kind, "food" if kind == "category" else "Cafe"),
    ).fetchall()
    return {day: (n, median) for day, n, median in rows}


def medians_of(**amounts: list[str]) -> dict[date, tuple[int, float]]:
    names = {"fri": FRIDAY, "sat": SATURDAY, "sun": SUNDAY, "mon": MONDAY}
    return {
        names[key]: (len(values), day_log_median(histogram(float(v) for v in values)))
        for key, values in amounts.items()
    }


def assert_medians(got: dict[date, tuple[int, float]], want: dict[date, tuple[int, float]]) -> None:
    assert {d: n for d, (n, _) in got.items()} == {d: n for d, (n, _) in want.items()}
    for day, (_, median) in want.items():
        assert got[day][1] == pytest.approx(median, rel=1e-12)


def window_medians(db: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = db.execute(
        "SELECT * FROM baseline_window_medians ORDER BY 1, 2, 3"
    ).fetchall()
    return rows


async def test_the_daily_move_adds_and_drops_the_right_days_medians(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    await insert_rows_and_advance(db, baseline_pool)
    first = medians_of(fri=["3.00"], sat=["4.00"], sun=["5.00", "6.00"])
    assert_medians(day_medians(db), first)
    assert_medians(day_medians(db, "category"), first)
    summed = window_medians(db)
    epoch = [(d - WEEKDAY_EPOCH).days for d in (FRIDAY, SATURDAY, SUNDAY)]
    # Per scope: 3 days, 4 samples, their days counted from 2000-01-03.
    assert [row[3:6] for row in summed] == [(3, 4, epoch[0] + epoch[1] + 2 * epoch[2])] * 2
    await advance(baseline_pool, NOW + timedelta(hours=11))  # the same day: nothing moves
    assert window_medians(db) == summed
    # A day later Friday 03-06 leaves and Monday 03-09 closes.
    await advance(baseline_pool, NOW + timedelta(days=1))
    assert_medians(
        day_medians(db), medians_of(sat=["4.00"], sun=["5.00", "6.00"], mon=["7.00", "8.00"])
    )
    assert [row[3:5] for row in window_medians(db)] == [(3, 5)] * 2


async def test_a_late_row_joins_its_days_median_at_the_next_recompute(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    await insert_rows_and_advance(db, baseline_pool)
    insert(db, at("2026-03-08T13:00:00+01:00"), "10.00")  # late, for Sunday 03-08, closed
    # Caught up by the same day's recompute (017's re-sum of the stale scope), no move.
    async with baseline_pool.connection() as conn, conn.transaction():
        stats = {s.scope.label(): s for s in await aggregate(conn, NOW.date(), DAYS)}
    want = medians_of(fri=["3.00"], sat=["4.00"], sun=["5.00", "6.00", "10.00"])
    assert_medians(day_medians(db), want)
    cafe = stats["merchant:Cafe:USD"].medians  # what the recompute read
    assert (cafe.days, cafe.count) == (3, 5)
    assert cafe.day_total == 0 * 1 + 1 * 1 + 2 * 3  # counted from the window's first day
    assert cafe.median_total == pytest.approx(sum(n * m for n, m in want.values()), rel=1e-12)


async def test_the_backfill_is_idempotent_and_a_call_that_changes_nothing_skips(
    db: Any, baseline_pool: AsyncConnectionPool
) -> None:
    """Migration 019's backfill (`baseline_medians_of_closed_days` over an empty table) gives
    what the daily move gives, and is idempotent, as is a repeated move."""
    await insert_rows_and_advance(db, baseline_pool)
    filled = window_medians(db)
    days = day_medians(db)
    db.execute("TRUNCATE baseline_rollup_medians, baseline_window_medians")  # as before 019
    db.execute("SELECT baseline_medians_of_closed_days('2026-03-06', '2026-03-08')")
    db.execute("SELECT baseline_medians_of_closed_days('2026-03-06', '2026-03-08')")
    assert window_medians(db) == filled
    assert day_medians(db) == days
    db.execute("SELECT baseline_hours_advance('2026-03-06', '2026-03-08')")
    assert window_medians(db) == filled
    # Nothing changed since: not rebuilt (a mark on a stored sum stays); a changed day is.
    db.execute("UPDATE baseline_window_medians SET median_total = 100")
    db.execute("SELECT baseline_medians_of_closed_days('2026-03-06', '2026-03-08')")
    assert {row[7] for row in window_medians(db)} == {100.0}
    insert(db, at("2026-03-07T12:00:00+00:00"), "9.00")
    db.execute("SELECT baseline_medians_of_closed_days('2026-03-06', '2026-03-08')")
    assert {row[7] for row in window_medians(db)} != {100.0}
    assert day_medians(db)[SATURDAY] == medians_of(sat=["4.00", "9.00"])[SATURDAY]


# Every 7 minutes for 24 days before NOW, 5 % dearer a day; every fourth a card check of 1.00.
_DRIFTING_WITH_CHECKS = """
INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,
                          anomaly, scored_at)
SELECT gen_random_uuid(),
       CASE WHEN g %% 4 = 0 THEN 1.00
            ELSE round(exp(4 - 0.05 * g * 7 / 1440.0 + ((g * 7919) %% 1000) / 1000.0 - 0.5)
                       ::numeric, 2)
       END,
       'USD', 'food', 'Cafe', %s::timestamptz - g * interval '7 minutes', false, now()
FROM generate_series(1, 5000) AS g
"""


async def test_the_baseline_worker_publishes_the_medians_trend_from_sql(
    isolated: Isolated, db: Any
) -> None:
    """The line through the days' medians has the purchases' 5 % a day; through every
    ln(amount), the checks take a quarter of it away."""
    db.execute(_DRIFTING_WITH_CHECKS, (NOW,))
    on = (await published_cafe(isolated, hour_levels=True, trend_through="medians")).tail
    off = (await published_cafe(isolated, hour_levels=True, trend_through="means")).tail
    assert on is not None and off is not None
    assert on.level_slope == pytest.approx(0.05, abs=0.005)
    assert off.level_slope < 0.8 * 0.05
