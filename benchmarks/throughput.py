"""Detector throughput: N transactions produced straight to Kafka, then one (or more) detector
processes started; the time until every transaction is persisted with its verdict.

    .venv/bin/python -m benchmarks.throughput --transactions 200000 --rounds 3 --detectors 1

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (`eval "$(ops/postgres.sh start)"`,
`eval "$(ops/kafka.sh start)"`). Each round uses its own schema, topics and consumer group.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from schemas import Baseline, BaselineScope, ScopeKind, Transaction, encode_model
from shared.kafka import ensure_topics, make_producer, project_topics
from shared.migrations import apply_migrations
from shared.settings import CommonSettings, settings_from

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = [f"category-{i}" for i in range(20)]
MERCHANTS = [f"merchant-{i}" for i in range(500)]


def round_env(partitions: int) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "DATABASE_SCHEMA": f"bench_{suffix}",
        "TOPIC_TRANSACTIONS": f"bench-transactions-{suffix}",
        "TOPIC_BASELINES": f"bench-baselines-{suffix}",
        "TOPIC_ALERTS": f"bench-alerts-{suffix}",
        "TOPIC_VERDICTS": f"bench-verdicts-{suffix}",
        "TOPIC_DLQ": f"bench-dlq-{suffix}",
        "TOPIC_PARTITIONS": str(partitions),
        "CONSUMER_GROUP": f"bench-detector-{suffix}",
        "LOG_LEVEL": "warning",
    }


def baselines(now: datetime) -> list[Baseline]:
    scopes = [BaselineScope(kind=ScopeKind.CATEGORY, name=c, currency="USD") for c in CATEGORIES]
    scopes += [BaselineScope(kind=ScopeKind.MERCHANT, name=m, currency="USD") for m in MERCHANTS]
    return [
        Baseline(
            id=uuid.uuid4(),
            scope=s,
            count=1000,
            mean=50.0,
            stddev=20.0,
            log_mean=3.8,
            log_stddev=0.5,
            window_days=30,
            computed_at=now,
        )
        for s in scopes
    ]


async def produce(env: dict[str, str], count: int) -> float:
    """Baselines, then `count` transactions (about 1% outliers); returns seconds spent."""
    producer = make_producer(env["KAFKA_BOOTSTRAP_SERVERS"], linger_ms=20)
    await producer.start()
    rng, now = random.Random(7), datetime.now(UTC)
    started = time.perf_counter()
    try:
        for baseline in baselines(now):
            await producer.send(
                env["TOPIC_BASELINES"], key=baseline.scope.key(), value=encode_model(baseline)
            )
        for i in range(count):
            amount = Decimal(rng.randint(100, 9000)) / 100
            if rng.random() < 0.01:
                amount *= 50
            txn = Transaction(
                id=uuid.uuid4(),
                amount=amount,
                category=rng.choice(CATEGORIES),
                merchant=rng.choice(MERCHANTS),
                received_at=now,
                transaction_date=now - timedelta(seconds=i),
            )
            await producer.send(
                env["TOPIC_TRANSACTIONS"], key=str(txn.id).encode(), value=encode_model(txn)
            )
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


def persisted(env: dict[str, str]) -> int:
    with psycopg.connect(
        env["DATABASE_URL"], options=f"-c search_path={env['DATABASE_SCHEMA']}"
    ) as conn:
        row = conn.execute("SELECT count(*) FROM transactions").fetchone()
        return int(row[0]) if row else 0


def drop_schema(env: dict[str, str]) -> None:
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(env["DATABASE_SCHEMA"])
            )
        )


def one_round(
    count: int, detectors: int, partitions: int, log_dir: Path, extra: dict[str, str]
) -> dict[str, Any]:
    env = round_env(partitions) | extra
    settings = settings_from(CommonSettings, env)
    apply_migrations(env["DATABASE_URL"], env["DATABASE_SCHEMA"])
    asyncio.run(ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], project_topics(settings)))
    produce_seconds = asyncio.run(produce(env, count))
    processes = []
    started = time.perf_counter()
    for index in range(detectors):
        log = (log_dir / f"detector-{index}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "detector_worker"],
                cwd=ROOT,
                env={**os.environ, **env, "METRICS_PORT": "0"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    first: tuple[float, int] | None = None
    try:
        while (done := persisted(env)) < count:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a detector exited; see {log_dir}")
            if first is None and done:
                first = (time.perf_counter(), done)  # start-up (Faust, group join) is over
            time.sleep(0.1)
        finished = time.perf_counter()
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        drop_schema(env)
    first_at, first_done = first or (started, 0)
    steady = (done - first_done) / (finished - first_at)
    return {
        "transactions": done,
        "seconds": finished - started,
        "startup_seconds": first_at - started,
        "per_second": steady,
        "per_second_per_detector": steady / detectors,
        "produce_seconds": produce_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--detectors", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/throughput.json"))
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra detector setting, e.g. BATCH_MAX_RECORDS=5000",
    )
    args = parser.parse_args()
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rounds = []
    for number in range(1, args.rounds + 1):
        extra = dict(item.split("=", 1) for item in args.env)
        result = one_round(args.transactions, args.detectors, args.partitions, log_dir, extra)
        rounds.append(result)
        print(
            f"round {number}: {result['transactions']:,} in {result['seconds']:.1f}s "
            f"(start-up {result['startup_seconds']:.1f}s), steady {result['per_second']:,.0f} "
            f"tx/s with {args.detectors} detector(s); produced in "
            f"{result['produce_seconds']:.1f}s"
        )
    rates = [r["per_second"] for r in rounds]
    print(
        f"median {statistics.median(rates):,.0f} tx/s [{min(rates):,.0f}-{max(rates):,.0f}] "
        f"with {args.detectors} detector process(es), {args.partitions} partitions"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "args": vars(args) | {"json": str(args.json)},
                "nproc": os.cpu_count(),
                "rounds": rounds,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
