"""The baseline maths' input, read where the data is: the daily rollup over the window.

`baseline_rollup` is maintained by a trigger on `transactions` (ops/migrations/002), so a
recompute reads at most `window_days` rows per scope however large the transactions table.
The window is whole UTC days: today (partial) and the `days - 1` days before it.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection

from baseline_worker.stats import Moments
from schemas import BaselineScope, ScopeKind

AGGREGATE_SQL = """
SELECT scope_kind, scope_name, currency, sum(sample_count)::bigint, sum(total), sum(total_sq),
       sum(log_total), sum(log_total_sq)
FROM baseline_rollup
WHERE day >= %(first_day)s AND day <= %(last_day)s
GROUP BY scope_kind, scope_name, currency
HAVING sum(sample_count) > 0
"""


@dataclass(frozen=True)
class ScopeStats:
    scope: BaselineScope
    moments: Moments


def window_days(now: datetime, days: int) -> tuple[date, date]:
    today = now.date()
    return today - timedelta(days=days - 1), today


async def aggregate(conn: AsyncConnection, now: datetime, days: int) -> list[ScopeStats]:
    first_day, last_day = window_days(now, days)
    cursor = await conn.execute(AGGREGATE_SQL, {"first_day": first_day, "last_day": last_day})
    return [
        ScopeStats(
            BaselineScope(kind=ScopeKind(kind), name=name, currency=currency),
            Moments(count, total, total_sq, log_total, log_total_sq),
        )
        for kind, name, currency, count, total, total_sq, log_total, log_total_sq in (
            await cursor.fetchall()
        )
    ]
