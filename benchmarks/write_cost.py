"""What the detector's write of one batch costs, by batch size and write path: the client's CPU
(`time.process_time`) and the wall time of `VerdictStore.persist`, batches without alerts, on
a migrated schema of its own (dropped afterwards). The two paths: one INSERT from a JSON
parameter committed on its own (batches up to `SMALL_BATCH` rows) and binary COPY into the
staging table, INSERT ... SELECT and COMMIT (the rest); the paths alternate, each size twice.

    .venv/bin/python -m benchmarks.write_cost --sizes 8 40 --batches 150
"""

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry

from benchmarks.harness import drop_schema
from detector_worker import store
from detector_worker.decision import Scored
from detector_worker.metrics import DetectorMetrics
from detector_worker.records import RawRecord
from detector_worker.store import VerdictStore, open_store_pool
from schemas import Transaction, Verdict
from shared.migrations import apply_migrations

_NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
_RAW = RawRecord("transactions", 0, 0, b"key", b"{}")
_PATHS = {"one statement": 1_000_000, "copy": 0}


def _scored() -> Scored:
    txn = Transaction(
        id=uuid.uuid4(),
        amount=Decimal("12.34"),
        category="food",
        merchant="Cafe",
        transaction_date=_NOW,
        received_at=_NOW,
    )
    return Scored(txn, Verdict(transaction_id=txn.id, anomaly=False, scored_at=_NOW), _RAW)


async def _measure(writer: VerdictStore, size: int, batches: int) -> tuple[float, float]:
    """Milliseconds of client CPU and of wall time per batch."""
    work = [[_scored() for _ in range(size)] for _ in range(batches)]
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in work:
        await writer.persist(batch, [])
    return (
        1000 * (time.process_time() - cpu) / batches,
        1000 * (time.perf_counter() - wall) / batches,
    )


async def compare(database_url: str, sizes: list[int], batches: int) -> None:
    schema = f"bench_write_{uuid.uuid4().hex[:8]}"
    apply_migrations(database_url, schema)
    pool = await open_store_pool(database_url, schema)
    writer = VerdictStore(pool, DetectorMetrics.create(CollectorRegistry()))
    try:
        for size in sizes:
            for path, small_batch in [*_PATHS.items(), *_PATHS.items()]:
                store.SMALL_BATCH = small_batch
                cpu, wall = await _measure(writer, size, batches)
                print(f"{size} rows, {path}: client CPU {cpu:.3f} ms, wall {wall:.2f} ms a batch")
    finally:
        await pool.close()
        drop_schema({"DATABASE_URL": database_url, "DATABASE_SCHEMA": schema})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 40])
    parser.add_argument("--batches", type=int, default=150)
    args = parser.parse_args()
    asyncio.run(compare(os.environ["DATABASE_URL"], args.sizes, args.batches))


if __name__ == "__main__":
    main()
