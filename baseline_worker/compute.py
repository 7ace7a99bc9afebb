"""The baseline maths, done where the data is: one SQL aggregation over the window."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from psycopg import AsyncConnection

from schemas import BaselineScope, ScopeKind

# One pass computes both scopes. Transactions already judged anomalous are left out, so a
# burst of outliers does not widen the baseline it is judged against (no self-poisoning).
AGGREGATE_SQL = """
SELECT
    CASE WHEN GROUPING(category) = 0 THEN 'category' ELSE 'merchant' END AS kind,
    COALESCE(category, merchant) AS name,
    currency,
    count(*) AS sample_count,
    avg(amount) AS mean,
    COALESCE(stddev_samp(amount), 0) AS stddev
FROM transactions
WHERE transaction_date >= %(since)s AND transaction_date <= %(until)s AND NOT anomaly
GROUP BY GROUPING SETS ((category, currency), (merchant, currency))
"""


@dataclass(frozen=True)
class ScopeStats:
    scope: BaselineScope
    count: int
    mean: Decimal
    stddev: Decimal


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now


async def aggregate(conn: AsyncConnection, now: datetime, days: int) -> list[ScopeStats]:
    since, until = window(now, days)
    cursor = await conn.execute(AGGREGATE_SQL, {"since": since, "until": until})
    return [
        ScopeStats(
            scope=BaselineScope(kind=ScopeKind(kind), name=name, currency=currency),
            count=count,
            mean=mean,
            stddev=stddev,
        )
        for kind, name, currency, count, mean, stddev in await cursor.fetchall()
    ]
