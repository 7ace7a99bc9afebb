"""The synchronous verdict path under wrk: `POST /transactions` answered 201 with the
detector's verdict, and `?wait=false` answered 202 once Kafka has the record.

One gateway and one detector (with baselines for the scopes wrk's bodies name) on a round's
own schema and topics; rate limits lifted. At each concurrency, `wrk -t2 -c C --latency` with
benchmarks/post.lua (a random transaction per request) for each path, and the CPU time each
process spent over the run, from /proc/<pid>/stat: the gateway, the detector, the broker and
the PostgreSQL backends the two workers hold (found by their application_name). CPU per
request is that time over the requests wrk completed: far less sensitive to neighbours on a
shared machine than the request rate.

`--reference URL` also loads another service that takes the same body, with the same wrk
command, between ours (a side-by-side ratio in one run); `--reference-pid` and
`--reference-pg` name its processes and its PostgreSQL for the CPU figures.

    .venv/bin/python -m benchmarks.verdict_path --rounds 3
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.harness import ROOT, cpu_seconds, free_port, isolated, running
from benchmarks.ingest import gateway_env
from benchmarks.stats import Metric, Outcome
from benchmarks.workload import baselines, publish_baselines

SCRIPT = ROOT / "benchmarks" / "post.lua"
# The scopes post.lua's bodies name (EUR): with baselines for them, every verdict is scored.
_CATEGORIES = ("groceries", "dining", "fuel", "travel")
_MERCHANTS = ("Lidl", "Nandos", "Shell", "Ryanair")
_PATHS = {"201": "", "202": "?wait=false"}
_RESULT = re.compile(r"RESULT req/s=(\S+) p50=(\S+)ms p99=(\S+)ms non2xx=(\d+) errors=(\d+)")
_REQUESTS = re.compile(r"(\d+) requests in")


@dataclass
class Target:
    """A service under load and what its CPU is read from (name -> pids, re-read per run)."""

    name: str
    url: str
    key: str
    processes: dict[str, Callable[[], list[int]]] = field(default_factory=dict)


def wrk(url: str, key: str, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run (niced: the load generator yields to the system under test)."""
    command = ["nice", "-n", "5", "wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s"]
    command += ["--latency", "-s", str(SCRIPT), url]
    done = subprocess.run(
        command, env=os.environ | {"AUTH": key}, capture_output=True, text=True, check=True
    )
    result, requests = _RESULT.search(done.stdout), _REQUESTS.search(done.stdout)
    if result is None or requests is None:
        raise RuntimeError(f"unexpected wrk output: {done.stdout}")
    rate, p50, p99, non2xx, errors = result.groups()
    return {
        "per_second": float(rate),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "requests": int(requests.group(1)),
        "non2xx": int(non2xx),
        "errors": int(errors),
    }


def measured(target: Target, path: str, connections: int, seconds: float) -> dict[str, Any]:
    """A wrk run and the CPU milliseconds per request of each of the target's processes."""
    pids = {name: find() for name, find in target.processes.items()}
    before = {name: _cpu(found) for name, found in pids.items()}
    run = wrk(f"{target.url}/transactions{path}", target.key, connections, seconds)
    after = {name: _cpu(found) for name, found in pids.items()}
    requests = max(1, run["requests"])
    run["cpu_ms_per_request"] = {
        name: 1000 * (after[name] - before[name]) / requests for name in pids
    }
    return run


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:  # a backend that left: its CPU is lost to both readings alike
            continue
    return total


def backends(dsn: str, application_name: str | None = None) -> list[int]:
    """Pids of PostgreSQL's client backends (of one application_name, if given)."""
    query = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
    query += " AND pid <> pg_backend_pid()"
    params: tuple[str, ...] = ()
    if application_name is not None:
        query += " AND application_name = %s"
        params = (application_name,)
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [int(row[0]) for row in conn.execute(query, params)]


def listening_pids(port: int) -> list[int]:
    """The processes listening on a local TCP port (the broker: not every Kafka JVM on the
    machine, since tests start clusters of their own)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    return [pid for pid in _pids() if inodes & _sockets(pid)]


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _sockets(pid: int) -> set[str]:
    found: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # gone, or not ours to read
        return found
    for fd in fds:
        with suppress(OSError):  # closed while read
            found.add(os.readlink(fd))
    return found


@contextmanager
def jalytics(env: dict[str, str]) -> Iterator[Target]:
    """A gateway and a detector on the round's schema and topics, baselines published."""
    app = f"bench-verdict-{uuid.uuid4().hex[:8]}"
    env = env | {"PGAPPNAME": app}
    now = datetime.now(UTC)
    scopes = [
        b.model_copy(update={"scope": b.scope.model_copy(update={"currency": "EUR"})})
        for b in baselines(now, _MERCHANTS, _CATEGORIES)
    ]
    asyncio.run(publish_baselines(env["KAFKA_BOOTSTRAP_SERVERS"], env["TOPIC_BASELINES"], scopes))
    key, port, ops = secrets.token_urlsafe(24), free_port(), free_port()
    with ExitStack() as stack:
        detector = stack.enter_context(running("detector_worker", env | {"METRICS_PORT": str(ops)}))
        detector.wait_healthy(f"http://127.0.0.1:{ops}/health")
        gateway = stack.enter_context(
            running("ingest_gateway", gateway_env(env, port, key, verdict_wait=2.0))
        )
        url = f"http://127.0.0.1:{port}"
        gateway.wait_healthy(f"{url}/ready")
        dsn = env["DATABASE_URL"]
        yield Target(
            "jalytics",
            url,
            key,
            {
                "gateway": lambda: [gateway.process.pid],
                "detector": lambda: [detector.process.pid],
                "broker": lambda: listening_pids(_port(env["KAFKA_BOOTSTRAP_SERVERS"])),
                "postgresql": lambda: backends(dsn, app),
            },
        )


def _port(bootstrap_servers: str) -> int:
    return int(bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


def reference(url: str, pids: list[int], pg_dsn: str | None) -> Target:
    processes: dict[str, Callable[[], list[int]]] = {"service": lambda: pids}
    if pg_dsn:
        processes["postgresql"] = lambda: backends(pg_dsn)
    return Target("reference", url, "", processes)


def one_round(
    concurrencies: list[int], seconds: float, other: Target | None
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    with isolated(6) as env, jalytics(env) as ours:
        for target in (ours, other):  # warm-up: start-up, group joins, connection pools
            if target is not None:
                wrk(f"{target.url}/transactions", target.key, 16, 3)
        for connections in concurrencies:
            for path, query in _PATHS.items():
                run = measured(ours, query, connections, seconds)
                runs.append({"target": ours.name, "path": path, "c": connections} | run)
                print(f"    {_line(runs[-1])}", flush=True)
            if other is not None:
                run = measured(other, "", connections, seconds)
                runs.append({"target": other.name, "path": "201", "c": connections} | run)
                print(f"    {_line(runs[-1])}", flush=True)
    return runs


def _line(run: dict[str, Any]) -> str:
    cpu = " ".join(f"{k} {v:.3f}" for k, v in run["cpu_ms_per_request"].items())
    return (
        f"{run['target']} {run['path']} c={run['c']}: {run['per_second']:,.0f} req/s "
        f"p50 {run['p50_ms']:.1f} p99 {run['p99_ms']:.1f} ms non2xx {run['non2xx']} "
        f"errors {run['errors']}; CPU ms/request: {cpu}"
    )


def metrics(rounds: list[list[dict[str, Any]]]) -> list[Metric]:
    """Per target, path and concurrency: rate, p50, p99 and CPU per request per process."""
    found: list[Metric] = []

    def which(run: dict[str, Any]) -> tuple[str, str, int]:
        return run["target"], run["path"], run["c"]

    for first in rounds[0]:
        same = [run for runs in rounds for run in runs if which(run) == which(first)]
        name = f"verdict path {first['target']} {first['path']}"
        at = f"c={first['c']}"
        found.append(Metric(name, f"{at} throughput", "req/s", [r["per_second"] for r in same]))
        found.append(Metric(name, f"{at} p50", "ms", [r["p50_ms"] for r in same]))
        found.append(Metric(name, f"{at} p99", "ms", [r["p99_ms"] for r in same]))
        for process in first["cpu_ms_per_request"]:
            values = [r["cpu_ms_per_request"][process] for r in same]
            found.append(Metric(name, f"{at} CPU {process}", "ms/req", values))
        totals = [sum(r["cpu_ms_per_request"].values()) for r in same]
        found.append(Metric(name, f"{at} CPU total", "ms/req", totals))
    return found


def measure(
    rounds: int, concurrencies: list[int], seconds: float, other: Target | None = None
) -> Outcome:
    results = []
    for number in range(1, rounds + 1):
        print(f"  round {number}", flush=True)
        results.append(one_round(concurrencies, seconds, other))
    return Outcome([run for runs in results for run in runs], metrics(results))


def main() -> None:
    from benchmarks.report import markdown_table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reference", help="URL of another service taking the same body")
    parser.add_argument("--reference-pid", type=int, nargs="*", default=[])
    parser.add_argument("--reference-pg", help="DSN of the reference's PostgreSQL")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/verdict-path.json"))
    args = parser.parse_args()
    other = None
    if args.reference:
        other = reference(args.reference, args.reference_pid, args.reference_pg)
    outcome = measure(args.rounds, args.concurrency, args.seconds, other)
    report = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rounds": outcome.rounds,
        "metrics": [m.as_json() for m in outcome.metrics],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown_table(outcome.metrics))


if __name__ == "__main__":
    main()
