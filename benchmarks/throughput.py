"""Detector throughput: N transactions produced straight to Kafka, then one (or more) detector
processes started; the time until every transaction is persisted with its verdict.

    .venv/bin/python -m benchmarks.throughput --transactions 200000 --rounds 3 --detectors 1
    .venv/bin/python -m benchmarks.throughput --transactions 100000 --rounds 4 --compare A B

`--compare` runs the detectors of commits (`COMMIT` or `COMMIT:NAME=VALUE,...`, each from
`git archive` in a scratch folder) one round each in turn, the order reversed every other
round, so that a slow spell of a shared machine hits each alike; compare the CPU per
transaction (from /proc) more than the rates.

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (`eval "$(ops/postgres.sh start)"`,
`eval "$(ops/kafka.sh start)"`). Each round uses its own schema, topics and consumer group.
The rate reported is the steady one: from the first persisted transaction (start-up, Faust
and the group join are over) to the last.
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.detector_ab import parse_variant
from benchmarks.gateway_ab import exported
from benchmarks.harness import ROOT, Worker, isolated, persisted
from benchmarks.stats import Metric, Outcome
from benchmarks.workload import baselines, produce_transactions, publish_baselines


async def produce(env: dict[str, str], count: int) -> float:
    """Baselines, then `count` transactions (about 1% outliers); returns seconds spent."""
    started = time.perf_counter()
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    await publish_baselines(bootstrap, env["TOPIC_BASELINES"], baselines(datetime.now(UTC)))
    await produce_transactions(bootstrap, env["TOPIC_TRANSACTIONS"], count)
    return time.perf_counter() - started


def _drain(
    env: dict[str, str], count: int, workers: list[Worker]
) -> tuple[float, float, int, float]:
    """Wait until `count` rows are persisted; (first row seen at, finished at, rows then,
    the detectors' CPU seconds in between)."""
    first: tuple[float, int, float] | None = None
    while (done := persisted(env)) < count:
        for worker in workers:
            worker.assert_running()
        if first is None and done:
            first = (time.perf_counter(), done, _cpu(workers))
        time.sleep(0.1)
    finished, cpu = time.perf_counter(), _cpu(workers)
    first_at, first_done, first_cpu = first or (finished, 0, cpu)
    return first_at, finished, first_done, cpu - first_cpu


def _cpu(workers: list[Worker]) -> float:
    return sum(worker.cpu_seconds() for worker in workers)


def one_round(
    count: int, detectors: int, partitions: int, extra: dict[str, str], tree: Path = ROOT
) -> dict[str, Any]:
    """`tree`: the checkout whose detector runs (another commit's, exported)."""
    with isolated(partitions, extra) as env:
        produce_seconds = asyncio.run(produce(env, count))
        started = time.perf_counter()
        workers = [
            Worker("detector_worker", env | {"METRICS_PORT": "0"}, cwd=tree)
            for _ in range(detectors)
        ]
        try:
            first_at, finished, first_done, cpu = _drain(env, count, workers)
            peaks = [worker.peak_rss_mb() for worker in workers]
        finally:
            for worker in workers:
                worker.stop()
    steady = (count - first_done) / max(finished - first_at, 1e-9)
    return {
        "transactions": count,
        "detectors": detectors,
        "seconds": finished - started,
        "startup_seconds": first_at - started,
        "per_second": steady,
        "per_second_per_detector": steady / detectors,
        # From /proc: far less sensitive to neighbours on a shared machine than the rate.
        "cpu_ms_per_transaction": 1000 * cpu / max(count - first_done, 1),
        "produce_seconds": produce_seconds,
        "detector_peak_rss_mb": peaks,
    }


def describe(result: dict[str, Any]) -> str:
    return (
        f"{result['transactions']:,} in {result['seconds']:.1f}s (start-up "
        f"{result['startup_seconds']:.1f}s), steady {result['per_second']:,.0f} tx/s with "
        f"{result['detectors']} detector(s), {result['cpu_ms_per_transaction']:.3f} CPU ms/tx;"
        f" peak RSS "
        f"{', '.join(f'{mb:.0f}' for mb in result['detector_peak_rss_mb'])} MiB"
    )


def measure(count: int, rounds: int, partitions: int = 6) -> tuple[Outcome, Outcome]:
    """One detector, then two in one group, same load, rounds interleaved (1, 2, 1, 2, ...)
    so that a slow spell of the machine hits both alike. (throughput, scale-out)"""
    single: list[dict[str, Any]] = []
    double: list[dict[str, Any]] = []
    for number in range(1, rounds + 1):
        for results, detectors in ((single, 1), (double, 2)):
            results.append(one_round(count, detectors, partitions, {}))
            print(f"  round {number}: {describe(results[-1])}", flush=True)
    ratios = [b["per_second"] / a["per_second"] for a, b in zip(single, double, strict=True)]
    throughput = Outcome(
        single,
        [
            Metric("detector throughput", "1 detector", "tx/s", _rates(single)),
            Metric(
                "detector throughput",
                "1 detector, CPU per transaction",
                "ms/req",
                [r["cpu_ms_per_transaction"] for r in single],
            ),
            Metric("memory", "detector peak RSS (throughput run)", "MiB", _peaks(single), "< 300"),
        ],
    )
    scale_out = Outcome(
        double,
        [
            Metric("scale-out", "2 detectors, one group", "tx/s", _rates(double)),
            Metric("scale-out", "2 detectors / 1 detector", "x", ratios),
        ],
    )
    return throughput, scale_out


def compare(variants: list[str], count: int, rounds: int, partitions: int) -> None:
    """Each variant's detector one round each in turn, the order reversed every other round;
    the medians and spreads at the end."""
    results: dict[str, list[dict[str, Any]]] = {text: [] for text in variants}
    with tempfile.TemporaryDirectory() as scratch:
        trees: dict[str, Path] = {}
        for text in variants:
            commit, _ = parse_variant(text)
            if commit not in trees:
                trees[commit] = exported(commit, Path(scratch))
        for number in range(rounds):
            for text in variants if number % 2 == 0 else variants[::-1]:
                commit, extra = parse_variant(text)
                results[text].append(one_round(count, 1, partitions, extra, trees[commit]))
                print(f"round {number + 1} {text}: {describe(results[text][-1])}", flush=True)
    print("\n| variant | CPU µs/tx, rounds | median | tx/s, rounds | median |")
    print("|---|---|---:|---|---:|")
    for text, same in results.items():
        cpu = [1000 * r["cpu_ms_per_transaction"] for r in same]
        rates = _rates(same)
        print(
            f"| {text} | {', '.join(f'{c:.0f}' for c in cpu)} | {statistics.median(cpu):.1f} | "
            f"{', '.join(f'{r:,.0f}' for r in rates)} | {statistics.median(rates):,.0f} |"
        )


def _rates(results: list[dict[str, Any]]) -> list[float]:
    return [float(r["per_second"]) for r in results]


def _peaks(results: list[dict[str, Any]]) -> list[float]:
    return [max(r["detector_peak_rss_mb"]) for r in results]


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
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="COMMIT[:NAME=VALUE,...]",
        help="detectors of these commits in paired rounds (one detector each)",
    )
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.transactions, args.rounds, args.partitions)
        return
    extra = dict(item.split("=", 1) for item in args.env)
    rounds = []
    for number in range(1, args.rounds + 1):
        rounds.append(one_round(args.transactions, args.detectors, args.partitions, extra))
        print(f"round {number}: {describe(rounds[-1])}", flush=True)
    rates = _rates(rounds)
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
