"""Every performance benchmark, one after the other, each against the real system (Kafka,
PostgreSQL, the workers as processes), several rounds each:

  throughput  detector throughput with 1 detector process, and 2 in one group (scale-out)
  ingest      HTTP `POST /transactions`: saturation and latency below it (202 and 201 paths)
  verdict     the synchronous verdict path under wrk at each concurrency: req/s, p50/p99 and
              CPU per request of the gateway, detector, broker and PostgreSQL
  latency     end-to-end latency at a fixed offered load (committed in PostgreSQL, alerts)
  memory      detector holding 100,000 baseline scopes (the other workers' peaks come from
              the runs above)
  recompute   baseline recompute over 1M and 10M stored transactions

    .venv/bin/python -m benchmarks.suite                 # everything, 3 rounds (make bench)
    .venv/bin/python -m benchmarks.suite --quick         # small sizes, a few minutes
    .venv/bin/python -m benchmarks.suite --only ingest latency --rounds 1

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS. Writes every round, the medians and the
spread, the machine and the git commit to benchmarks/results/performance.json (after each
benchmark, so an interrupted run keeps what it measured) and prints a markdown table.
"""

import argparse
import json
import math
import os
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import ingest, latency, memory, recompute, throughput, verdict_path
from benchmarks.machine import describe_machine, git_state, load_average
from benchmarks.report import markdown_table
from benchmarks.stats import Metric, Outcome

BENCHMARKS = ("throughput", "ingest", "verdict", "latency", "memory", "recompute")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="rounds of each benchmark (default 3)")
    add("--quick", action="store_true", help="small sizes everywhere (development)")
    add("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    add("--transactions", type=int, help="throughput: transactions per round (200,000)")
    add("--http-seconds", type=float, help="ingest: measured seconds per load run (10)")
    add("--concurrency", type=int, nargs="+", help="ingest: closed-loop connections (16 64 256)")
    add("--open-shares", type=float, nargs="+", default=[0.5, 0.8], help="of saturation")
    add("--open-rates", type=float, nargs="*", default=[1000.0], help="fixed req/s (1,000)")
    add("--no-201", action="store_true", help="ingest: skip the path with a detector")
    add("--latency-rate", type=float, default=1000.0, help="latency: offered tx/s (1,000)")
    add("--latency-seconds", type=float, help="latency: seconds of load per round (30)")
    add("--scopes", type=int, help="memory: baseline scopes (100,000)")
    add("--recompute-rows", type=int, nargs="+", help="recompute: table sizes (1M 10M)")
    add("--skip-10m", action="store_true", help="recompute: 1M rows only (loading 10M is slow)")
    add("--json", type=Path, default=Path("benchmarks/results/performance.json"))
    args = parser.parse_args()
    _fill_sizes(args)
    return args


def _fill_sizes(args: argparse.Namespace) -> None:
    """The sizes not given explicitly: the full ones, or the --quick ones."""
    full: dict[str, Any] = {
        "transactions": 200_000,
        "http_seconds": 10.0,
        "concurrency": [16, 64, 256],
        "latency_seconds": 30.0,
        "scopes": 100_000,
        "recompute_rows": [1_000_000] if args.skip_10m else [1_000_000, 10_000_000],
    }
    quick: dict[str, Any] = {
        "transactions": 20_000,
        "http_seconds": 5.0,
        "concurrency": [16, 64],
        "latency_seconds": 10.0,
        "scopes": 100_000,
        "recompute_rows": [100_000],
    }
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def runners(args: argparse.Namespace) -> dict[str, Callable[[], list[tuple[str, Outcome]]]]:
    plan = ingest.LoadPlan(
        args.concurrency, args.open_shares, args.open_rates, args.http_seconds, warmup=2.0
    )
    return {
        "throughput": lambda: _throughput(args),
        "ingest": lambda: [("ingest", ingest.measure(args.rounds, plan, not args.no_201))],
        "verdict": lambda: [
            (
                "verdict",
                verdict_path.measure(args.rounds, args.concurrency, args.http_seconds),
            )
        ],
        "latency": lambda: [
            ("latency", latency.measure(args.rounds, args.latency_rate, args.latency_seconds))
        ],
        "memory": lambda: [
            ("memory", memory.measure(args.rounds, args.scopes, transactions=20_000))
        ],
        "recompute": lambda: [("recompute", recompute.measure(args.recompute_rows, args.rounds))],
    }


def _throughput(args: argparse.Namespace) -> list[tuple[str, Outcome]]:
    single, double = throughput.measure(args.transactions, args.rounds)
    return [("throughput", single), ("scale_out", double)]


def main() -> None:
    args = arguments()
    missing = [v for v in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") if v not in os.environ]
    if missing:
        raise SystemExit(f"set {' and '.join(missing)} (see ops/postgres.sh, ops/kafka.sh)")
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "benchmarks.suite", *sys.argv[1:]]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "machine": describe_machine(),
        "load_average_at_start": load_average(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": {},
    }
    metrics: list[Metric] = []
    todo = runners(args)
    for name in args.only:
        print(f"== {name}", flush=True)
        for key, outcome in todo[name]():
            report["results"][key] = {
                "metrics": [m.as_json() for m in outcome.metrics],
                "rounds": outcome.rounds,
            }
            metrics += outcome.metrics
        report["load_average_at_end"] = load_average()
        _write(args.json, report)
    # Memory figures come from several benchmarks: together, last.
    table = markdown_table(sorted(metrics, key=lambda m: m.benchmark == "memory"))
    report["table"] = table
    _write(args.json, report)
    print(f"\n{table}\nwritten {args.json}")


def _write(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(report), indent=2, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """NaN (a percentile of no samples) as null: the file stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


if __name__ == "__main__":
    main()
