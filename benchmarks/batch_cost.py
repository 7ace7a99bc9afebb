"""What the detector's own code costs per transaction, in one process (no Kafka, no database).

    .venv/bin/python -m benchmarks.batch_cost --rounds 7

`benchmarks.throughput`'s workload (520 baselines, transactions with about 1 % outliers, as
encoded on the topic) in batches of 1,000 records, through each step the pipeline runs on a
batch at saturation: decide (decode, validate, score, alerts), the records to publish
(verdicts and alerts encoded), the rows COPY is given, and the metrics. Reported per step:
the median over rounds of the µs per transaction (process CPU time), with the spread. With
`--settle-heap` the garbage collector is tuned as in a started detector (its cost is spread
over the steps, as the collector runs when an allocation crosses its threshold).
"""

import argparse
import random
import statistics
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from benchmarks.support import index
from benchmarks.workload import baselines, transaction
from detector_worker.baseline_table import BaselineTable
from detector_worker.decision import BatchDecision, decide
from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.metrics import DetectorMetrics
from detector_worker.pipeline import DetectorPipeline, outgoing_records
from detector_worker.records import RawRecord
from detector_worker.runtime import settle_heap
from detector_worker.scoring import ScoringConfig
from detector_worker.settings import DetectorSettings
from detector_worker.store import _transaction_row
from schemas import encode_model
from schemas.records import transaction_key

Observe = Callable[[list[RawRecord], BatchDecision], None]


def batches(count: int, size: int) -> list[list[RawRecord]]:
    rng, now = random.Random(7), datetime.now(UTC)
    records = []
    for i in range(count):
        txn = transaction(rng, now, i)
        records.append(RawRecord("t", i % 6, i, transaction_key(txn.id), encode_model(txn)))
    return [records[i : i + size] for i in range(0, count, size)]


def one_round(
    work: list[list[RawRecord]], table: Mapping[ScopeKey, HeldBaseline], observe: Observe
) -> dict[str, float]:
    config, settings = ScoringConfig(), DetectorSettings(database_url="postgresql://unused")
    seconds = dict.fromkeys(("decide", "encode", "rows", "metrics"), 0.0)
    for records in work:
        clock = time.process_time()
        decision = decide(records, table, config, datetime.now(UTC))
        seconds["decide"] += (now := time.process_time()) - clock
        outgoing_records(decision, settings)
        seconds["encode"] += (clock := time.process_time()) - now
        [_transaction_row(item) for item in decision.scored]
        seconds["rows"] += (now := time.process_time()) - clock
        observe(records, decision)
        seconds["metrics"] += time.process_time() - now
    total = sum(len(records) for records in work)
    return {step: 1e6 * value / total for step, value in seconds.items()}


def observer() -> Observe:
    """The pipeline's per-batch metrics, on a fresh registry and an empty table."""
    metrics = DetectorMetrics.create(CollectorRegistry())
    pipeline = DetectorPipeline.__new__(DetectorPipeline)
    pipeline._metrics = metrics
    pipeline._table = BaselineTable()
    return pipeline._observe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--settle-heap",
        action="store_true",
        help="tune the garbage collector as a started detector does (runtime.settle_heap)",
    )
    args = parser.parse_args()
    work = batches(args.transactions, args.batch)
    observe, table = observer(), index(baselines(datetime.now(UTC)))
    one_round(work[:2], table, observe)  # warm the caches as a running detector has them
    if args.settle_heap:
        settle_heap()
    rounds = [one_round(work, table, observe) for _ in range(args.rounds)]
    for step in (*rounds[0], "total"):
        values = [sum(r.values()) if step == "total" else r[step] for r in rounds]
        print(
            f"{step:>8}: {statistics.median(values):6.2f} µs/tx "
            f"[{min(values):.2f}-{max(values):.2f}]"
        )


if __name__ == "__main__":
    main()
