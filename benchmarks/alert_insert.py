"""What matching suppression rules costs on the detector's write path.

The detector's alert INSERT (detector_worker/store.py) matches every alert against the live
rules; this times it against the plain INSERT it replaced, per batch of alerts, with no rule,
with live rules that match, and with live rules that match nothing (the usual case), beside
10,000 expired rules. Own schema, dropped afterwards:

    .venv/bin/python -m benchmarks.alert_insert --rounds 200
"""

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from detector_worker.store import ALERT_COLUMNS, INSERT_ALERTS
from shared.db import columns
from shared.migrations import apply_migrations

# The statement before suppression existed (migration 001's columns only).
_PLAIN_INSERT = """
INSERT INTO alerts (
    id, transaction_id, severity, rule, alert_message, z_score, baseline_id, created_at
)
SELECT * FROM unnest(
    %s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::text[], %s::double precision[],
    %s::uuid[], %s::timestamptz[]
)
ON CONFLICT (transaction_id) DO NOTHING
"""
_TRANSACTIONS = """
INSERT INTO transactions (id, amount, currency, category, merchant, transaction_date,
                          anomaly, scored_at)
SELECT id, 500, 'USD', 'food', 'm' || (n %% 500), now(), true, now()
FROM unnest(%s::uuid[]) WITH ORDINALITY AS t (id, n)
"""
_RULES = """
INSERT INTO suppressions (id, merchant, currency, max_amount, reason, expires_at, created_by)
SELECT gen_random_uuid(), %s || i, 'USD', 1000, 'bench', now() + %s::interval, 'bench'
FROM generate_series(1, %s) i
"""
Connection = psycopg.Connection[Any]


def _scope(n: int) -> tuple[object, ...]:
    """category, merchant, currency, amount: what the rules are matched on."""
    return ("food", f"m{n % 500}", "USD", Decimal(500))


def _alert_rows(db: Connection, count: int) -> list[tuple[object, ...]]:
    """`count` alert rows (the store's columns) on new transactions."""
    ids = [uuid.uuid4() for _ in range(count)]
    db.execute(_TRANSACTIONS, (ids,))
    now = datetime.now(UTC)
    return [
        (uuid.uuid4(), t, "high", "zscore", "m", 3.5, uuid.uuid4(), now, *_scope(n))
        for n, t in enumerate(ids, start=1)
    ]


def _timed(db: Connection, action: Callable[[], object]) -> float:
    with db.transaction():
        started = time.perf_counter()
        action()
        return (time.perf_counter() - started) * 1000


def _compare(db: Connection, label: str, per_batch: int, rounds: int) -> None:
    plain, matching = [], []
    for _ in range(rounds):
        old = columns([row[:8] for row in _alert_rows(db, per_batch)], 8)
        plain.append(_timed(db, partial(db.execute, _PLAIN_INSERT, old)))
        new = columns(_alert_rows(db, per_batch), ALERT_COLUMNS)
        matching.append(_timed(db, partial(db.execute, INSERT_ALERTS, new)))
    before, after = statistics.median(plain), statistics.median(matching)
    print(
        f"| {label} | {per_batch} | {before:.2f} | {after:.2f} | {after - before:+.2f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--rules", type=int, default=100)
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    schema = f"bench_alert_insert_{uuid.uuid4().hex[:8]}"
    apply_migrations(url, schema)
    try:
        with psycopg.connect(url, autocommit=True, options=f"-c search_path={schema}") as db:
            print(
                "| live rules | alerts per batch | plain INSERT ms | with matching ms | cost ms |"
            )
            print("|---|---|---|---|---|")
            db.execute(_RULES, ("old", "-1 day", 10_000))
            for per_batch in (5, 50):
                _compare(db, "none", per_batch, args.rounds)
            db.execute(_RULES, ("m", "1 day", args.rules))
            for per_batch in (5, 50):
                _compare(db, f"{args.rules}, matching", per_batch, args.rounds)
            db.execute("UPDATE suppressions SET merchant = 'x' || merchant")
            for per_batch in (5, 50):
                _compare(db, f"{args.rules}, matching none", per_batch, args.rounds)
    finally:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
