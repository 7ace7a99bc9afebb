"""The gateway's CPU per request, commit against commit, in paired rounds.

One round environment (schema and topics; for the 201 path a detector with baselines for the
scopes wrk's bodies name), one gateway process per commit, all running at once, each from
`git archive <commit>` in a scratch folder (`python -m ingest_gateway` run there imports that
tree). Each round loads every gateway in turn with `wrk -t2 -c C -d S` and benchmarks/post.lua
(as benchmarks/verdict_path.py), the order reversed every other round, and reads the
gateway's user and system CPU from /proc/<pid>/stat over the run: per request, the figure that
moves least with the neighbours on a shared machine. Reports each commit's median and every
round, so a change is read round by round against its pair.

    .venv/bin/python -m benchmarks.gateway_ab 31bd9d9 HEAD --path 202 --rounds 8
    .venv/bin/python -m benchmarks.gateway_ab 31bd9d9 HEAD --log-level info  # access log on

With --in-process, each round measures each commit's own code instead, without a socket or
the broker (benchmarks/gateway_inprocess.py): its CPU per request, or with --instructions the
instructions per request valgrind counts, which the machine's other load does not move.

    .venv/bin/python -m benchmarks.gateway_ab ac50677 HEAD --in-process --instructions --rounds 1
"""

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from statistics import median

from benchmarks.gateway_inprocess import measure
from benchmarks.harness import LOG_DIR, ROOT, free_port, get_json, isolated, running, wait_until
from benchmarks.ingest import gateway_env
from benchmarks.support import stop_process
from benchmarks.verdict_path import _CATEGORIES, _MERCHANTS, wrk
from benchmarks.workload import baselines, publish_baselines

_TICKS = os.sysconf("SC_CLK_TCK")


def user_and_system(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def exported(commit: str, into: Path) -> Path:
    """The tree of `commit` (as committed: uncommitted changes are not in it)."""
    tree = into / commit.replace("/", "_")
    tree.mkdir()
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


@contextmanager
def gateway(tree: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / f"gateway-ab-{tree.name}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest_gateway"],
            cwd=tree,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop_process(process, 30)


def _ready(url: str) -> bool:
    try:
        return bool(get_json(f"{url}/ready").get("status") == "ok")
    except (OSError, ValueError):
        return False


def _with_detector(env: dict[str, str], stack: ExitStack) -> None:
    scopes = [
        b.model_copy(update={"scope": b.scope.model_copy(update={"currency": "EUR"})})
        for b in baselines(datetime.now(UTC), _MERCHANTS, _CATEGORIES)
    ]
    asyncio.run(publish_baselines(env["KAFKA_BOOTSTRAP_SERVERS"], env["TOPIC_BASELINES"], scopes))
    ops = free_port()
    detector = stack.enter_context(running("detector_worker", env | {"METRICS_PORT": str(ops)}))
    detector.wait_healthy(f"http://127.0.0.1:{ops}/health")


def compare(
    commits: list[str], path: str, connections: int, seconds: float, rounds: int, log_level: str
) -> None:
    query = "" if path == "201" else "?wait=false"
    # LOG_LEVEL=info measures the access log as `make up` runs it (one line per request).
    logs = {"LOG_LEVEL": log_level}
    with tempfile.TemporaryDirectory() as scratch, isolated(6) as env, ExitStack() as stack:
        if path == "201":
            _with_detector(env, stack)
        targets: dict[str, tuple[int, str, str]] = {}
        for commit in commits:
            key, port = secrets.token_urlsafe(24), free_port()
            verdict_wait = 2.0 if path == "201" else 0.0
            tree = exported(commit, Path(scratch))
            process = stack.enter_context(
                gateway(tree, gateway_env(env, port, key, verdict_wait) | logs)
            )
            url = f"http://127.0.0.1:{port}"
            wait_until(partial(_ready, url), 90, f"the gateway of {commit}")
            targets[commit] = (process.pid, f"{url}/transactions{query}", key)
        for _, url, key in targets.values():
            wrk(url, key, 16, 3)  # warm-up: connections, metadata, the first batches
        per_request: dict[str, list[float]] = {commit: [] for commit in commits}
        for number in range(rounds):
            for commit in commits if number % 2 == 0 else commits[::-1]:
                pid, url, key = targets[commit]
                user, system = user_and_system(pid)
                run = wrk(url, key, connections, seconds)
                user_after, system_after = user_and_system(pid)
                requests = max(1, run["requests"])
                us_user = 1e6 * (user_after - user) / requests
                us_system = 1e6 * (system_after - system) / requests
                per_request[commit].append(us_user + us_system)
                print(
                    f"round {number} {commit}: {run['per_second']:,.0f} req/s, p50 "
                    f"{run['p50_ms']} ms, p99 {run['p99_ms']} ms, non-2xx {run['non2xx']}; CPU "
                    f"{us_user + us_system:.0f} µs/request (user {us_user:.0f}, system "
                    f"{us_system:.0f})",
                    flush=True,
                )
        for commit, values in per_request.items():
            rounds_text = ", ".join(f"{value:.0f}" for value in values)
            print(f"{commit}: median {median(values):.0f} µs/request [{rounds_text}]")


def compare_in_process(
    commits: list[str], path: str, rounds: int, log_level: str, instructions: bool
) -> None:
    unit = "instructions" if instructions else "µs of CPU"
    with tempfile.TemporaryDirectory() as scratch:
        trees = {commit: exported(commit, Path(scratch)) for commit in commits}
        per_request: dict[str, list[float]] = {commit: [] for commit in commits}
        for number in range(rounds):
            for commit in commits if number % 2 == 0 else commits[::-1]:
                value = measure(
                    trees[commit], path, 1000 if instructions else 3000, log_level, instructions
                )
                per_request[commit].append(value)
                print(f"round {number} {commit}: {value:,.1f} {unit} per request", flush=True)
        for commit, values in per_request.items():
            rounds_text = ", ".join(f"{value:,.1f}" for value in values)
            print(f"{commit}: median {median(values):,.1f} {unit} per request [{rounds_text}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("commits", nargs="+", help="commits (or branches) to compare")
    parser.add_argument("--path", choices=("201", "202"), default="202")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--log-level",
        default="warning",
        help="the gateways' LOG_LEVEL: info writes the access log",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="each commit's own code, no socket or broker"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="with --in-process: count instructions"
    )
    args = parser.parse_args()
    if args.in_process:
        compare_in_process(args.commits, args.path, args.rounds, args.log_level, args.instructions)
    else:
        compare(
            args.commits, args.path, args.connections, args.seconds, args.rounds, args.log_level
        )


if __name__ == "__main__":
    main()
