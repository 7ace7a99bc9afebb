"""The detector on the 201 path, commit against commit (or setting against setting), in
paired rounds.

Each variant gets its own round environment (schema and topics, baselines for the scopes
wrk's bodies name), a detector run from `git archive <commit>` in a scratch folder (with the
variant's extra environment, if any) and a gateway from this checkout: every variant runs at
once, the same gateway code in front of each. Each round loads every variant in turn with
`wrk -t2 -c C -d S` on `POST /transactions` (benchmarks/verdict_path.py's wrk), the order
reversed every other round, and reads the CPU of the detector, of its PostgreSQL backends and
of the gateway from /proc over the run. Per batch of the detector (its `detector_batch_size`
count): records, and the context switches of all its threads (`/proc/PID/task/*/status`:
each time a thread went to sleep or was preempted; `/proc/PID/io` counts no socket calls
on this kernel). A variant is `COMMIT` or `COMMIT:NAME=VALUE,NAME=VALUE`.

    .venv/bin/python -m benchmarks.detector_ab HEAD~1 HEAD --rounds 4 --seconds 6
    .venv/bin/python -m benchmarks.detector_ab HEAD HEAD:BATCH_QUIET_SECONDS=0.005
"""

import argparse
import asyncio
import re
import secrets
import tempfile
import urllib.request
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.gateway_ab import exported
from benchmarks.harness import Worker, free_port, isolated, running
from benchmarks.ingest import gateway_env
from benchmarks.verdict_path import _CATEGORIES, _MERCHANTS, Target, backends, measured, wrk
from benchmarks.workload import baselines, publish_baselines


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    commit, _, settings = text.partition(":")
    extra = dict(item.split("=", 1) for item in settings.split(",") if item)
    return commit, extra


def variant(stack: ExitStack, name: str, tree: Path, extra: dict[str, str]) -> Target:
    """A round environment with a detector of `tree` and a gateway of this checkout."""
    env = stack.enter_context(isolated(6)) | {"PGAPPNAME": f"bench-ab-{uuid.uuid4().hex[:8]}"}
    scopes = [
        b.model_copy(update={"scope": b.scope.model_copy(update={"currency": "EUR"})})
        for b in baselines(datetime.now(UTC), _MERCHANTS, _CATEGORIES)
    ]
    asyncio.run(publish_baselines(env["KAFKA_BOOTSTRAP_SERVERS"], env["TOPIC_BASELINES"], scopes))
    ops = free_port()
    detector = Worker("detector_worker", env | {"METRICS_PORT": str(ops), **extra}, cwd=tree)
    stack.callback(detector.stop)
    detector.wait_healthy(f"http://127.0.0.1:{ops}/health")
    key, port = secrets.token_urlsafe(24), free_port()
    gateway = stack.enter_context(
        running("ingest_gateway", gateway_env(env, port, key, verdict_wait=2.0))
    )
    url = f"http://127.0.0.1:{port}"
    gateway.wait_healthy(f"{url}/ready")
    dsn, app = env["DATABASE_URL"], env["PGAPPNAME"]
    counters[name] = lambda: detector_counters(detector.process.pid, ops)
    return Target(
        name,
        url,
        key,
        {
            "detector": lambda: [detector.process.pid],
            "postgresql": lambda: backends(dsn, app),
            "gateway": lambda: [gateway.process.pid],
        },
    )


# name -> a reading of the detector's counters (batches, records, context switches).
counters: dict[str, Any] = {}
_BATCHES = re.compile(rb"^detector_batch_size_(count|sum) ([0-9.e+]+)$", re.MULTILINE)


def detector_counters(pid: int, metrics_port: int) -> dict[str, float]:
    """The detector's batches and records so far (its metrics) and the context switches of
    all its threads (/proc)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
        found = {kind.decode(): float(value) for kind, value in _BATCHES.findall(page.read())}
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if "ctxt_switches:" in line:
                switches += int(line.split()[-1])
    return {
        "batches": found.get("count", 0.0),
        "records": found.get("sum", 0.0),
        "switches": float(switches),
    }


def per_batch(target: Target, run: dict[str, Any], before: dict[str, float]) -> None:
    """Add the detector's counts per batch over the run to `run`."""
    after = counters[target.name]()
    batches = max(1.0, after["batches"] - before["batches"])
    run["per_batch"] = {k: (after[k] - before[k]) / batches for k in after if k != "batches"}


def compare(variants: list[str], concurrencies: list[int], seconds: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        trees: dict[str, Path] = {}
        targets: list[Target] = []
        for text in variants:
            commit, extra = parse_variant(text)
            if commit not in trees:
                trees[commit] = exported(commit, Path(scratch))
            targets.append(variant(stack, text, trees[commit], extra))
        for target in targets:
            wrk(f"{target.url}/transactions", target.key, 16, 3)  # warm-up
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for number in range(rounds):
            for connections in concurrencies:
                for target in targets if number % 2 == 0 else targets[::-1]:
                    before = counters[target.name]()
                    run = measured(target, "", connections, seconds)
                    per_batch(target, run, before)
                    runs.setdefault((target.name, connections), []).append(run)
                    print(f"round {number} c={connections} {target.name}: {_line(run)}", flush=True)
        _summary(runs)


def _line(run: dict[str, Any]) -> str:
    cpu, batch = run["cpu_ms_per_request"], run["per_batch"]
    return (
        f"{run['per_second']:,.0f} req/s p50 {run['p50_ms']:.1f} p99 {run['p99_ms']:.1f} ms "
        f"non2xx {run['non2xx']}; CPU ms/request detector {cpu['detector']:.3f} "
        f"postgresql {cpu['postgresql']:.3f} gateway {cpu['gateway']:.3f}; per batch "
        f"{batch['records']:.1f} records, {batch['switches']:.1f} context switches"
    )


def _summary(runs: dict[tuple[str, int], list[dict[str, Any]]]) -> None:
    print(
        "\n| variant | C | req/s | p50 ms | p99 ms | detector CPU-ms/req | PostgreSQL | gateway "
        "| records/batch | switches/batch |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, connections), same in runs.items():

        def med(pick: Any, same: list[dict[str, Any]] = same) -> float:
            return float(median(pick(r) for r in same))

        print(
            f"| {name} | {connections} | {med(lambda r: r['per_second']):,.0f} | "
            f"{med(lambda r: r['p50_ms']):.1f} | {med(lambda r: r['p99_ms']):.1f} | "
            f"{med(lambda r: r['cpu_ms_per_request']['detector']):.3f} | "
            f"{med(lambda r: r['cpu_ms_per_request']['postgresql']):.3f} | "
            f"{med(lambda r: r['cpu_ms_per_request']['gateway']):.3f} | "
            f"{med(lambda r: r['per_batch']['records']):.1f} | "
            f"{med(lambda r: r['per_batch']['switches']):.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+", help="COMMIT or COMMIT:NAME=VALUE,...")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    compare(args.variants, args.concurrency, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
