"""Writing a batch of which PostgreSQL refuses some rows: every other row stored, each
refused one named with PostgreSQL's reason.

A value the schema lets through and the database does not hold (the instance found: an
RFC 3339 offset over PostgreSQL's ±15:59) fails the whole batch's write, the same way at
every replay: one record would stall its partitions for good. So a batch refused for its
data is written again in halves, down to the single rows PostgreSQL refuses; each half it
takes is committed as it comes. The writes are idempotent: a replay after a crash midway
redoes nothing, and a transient failure midway (the retry around this) starts it over.
"""

from collections.abc import Awaitable, Callable, Sequence

from psycopg import Error

from detector_worker.decision import Scored
from detector_worker.ports import Persisted
from detector_worker.retry import REFUSED_BY_STORE
from schemas import Alert

Persist = Callable[[Sequence[Scored], Sequence[Alert]], Awaitable[Persisted]]


async def persist_isolating_refused(
    persist: Persist, batch: Sequence[Scored], alerts: Sequence[Alert]
) -> Persisted:
    """`persist(batch, alerts)`; when PostgreSQL refuses it for its data, the halves apart,
    so that what comes back names each refused transaction and all the rest is stored.
    Anything else (an outage included) is raised as it was: never a dead letter."""
    try:
        return await persist(batch, alerts)
    except REFUSED_BY_STORE as exc:
        if len(batch) == 1:
            return Persisted(refused={batch[0].transaction.id: refusal_message(exc)})
        if not batch:
            raise
    middle = len(batch) // 2
    halves = [
        await persist_isolating_refused(persist, half, _alerts_of(half, alerts))
        for half in (batch[:middle], batch[middle:])
    ]
    return _merged(halves)


def refusal_message(error: Error) -> str:
    """PostgreSQL's own words (its SQLSTATE and primary message: the detail may quote the
    whole row), or psycopg's when the refusal came from the client side."""
    primary = error.diag.message_primary
    if error.sqlstate is None or primary is None:
        return f"refused by the database: {error}"
    return f"refused by PostgreSQL ({error.sqlstate}): {primary}"


def _alerts_of(batch: Sequence[Scored], alerts: Sequence[Alert]) -> list[Alert]:
    ids = {item.transaction.id for item in batch}
    return [alert for alert in alerts if alert.transaction_id in ids]


def _merged(parts: Sequence[Persisted]) -> Persisted:
    merged = Persisted()
    for part in parts:
        merged.conflicts.update(part.conflicts)
        merged.suppressed.update(part.suppressed)
        merged.refused.update(part.refused)
    return merged
