"""HTTP ingest: `POST /transactions` against one real gateway process (acks=all), loaded by
`benchmarks.http_load` in a process of its own.

Two paths, each in its own round environment:
- 202: no detector and VERDICT_WAIT_SECONDS=0: the gateway answers as soon as Kafka has
  acknowledged the record. This is the ingest path itself.
- 201: a detector runs and the gateway waits (VERDICT_WAIT_SECONDS=2) for its verdict: what a
  client waiting for the decision sees; bounded by the detector too.
For each: closed loop at each concurrency (the best is the saturation throughput), then open
loop at fixed shares of that saturation, for the latency below saturation. Rate limits are
raised out of the way; the client presents a real API key (the gateway holds its hash).
"""

import asyncio
import hashlib
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from benchmarks.harness import LOG_DIR, ROOT, Worker, free_port, isolated, running
from benchmarks.stats import Metric, Outcome, latency_summary
from benchmarks.workload import baselines, publish_baselines

_UNLIMITED = "1000000"
_SUCCESS = ("201", "202")


@dataclass(frozen=True)
class LoadPlan:
    concurrencies: Sequence[int]  # closed loop, one run each
    open_shares: Sequence[float]  # open loop at these shares of the saturation throughput
    open_rates: Sequence[float]  # and at these fixed rates (req/s), comparable across commits
    seconds: float
    warmup: float


@dataclass(frozen=True)
class Gateway:
    url: str
    key: str
    worker: Worker


def gateway_env(env: dict[str, str], port: int, key: str, verdict_wait: float) -> dict[str, str]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return env | {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "API_KEYS_SHA256": f"bench:{digest}",
        "RATE_LIMIT_RPS": _UNLIMITED,
        "RATE_LIMIT_BURST": _UNLIMITED,
        "GLOBAL_RATE_LIMIT_RPS": _UNLIMITED,
        "GLOBAL_RATE_LIMIT_BURST": _UNLIMITED,
        "VERDICT_WAIT_SECONDS": str(verdict_wait),
    }


@contextmanager
def system(env: dict[str, str], with_detector: bool) -> Iterator[Gateway]:
    """A healthy gateway; for the 201 path also a detector, with baselines to score against."""
    key, port = secrets.token_urlsafe(24), free_port()
    with ExitStack() as stack:
        if with_detector:
            topic, bootstrap = env["TOPIC_BASELINES"], env["KAFKA_BOOTSTRAP_SERVERS"]
            asyncio.run(publish_baselines(bootstrap, topic, baselines(datetime.now(UTC))))
            ops = free_port()
            detector = stack.enter_context(
                running("detector_worker", env | {"METRICS_PORT": str(ops)})
            )
            detector.wait_healthy(f"http://127.0.0.1:{ops}/health")
        verdict_wait = 2.0 if with_detector else 0.0
        gateway = stack.enter_context(
            running("ingest_gateway", gateway_env(env, port, key, verdict_wait))
        )
        url = f"http://127.0.0.1:{port}"
        gateway.wait_healthy(f"{url}/ready")
        yield Gateway(url, key, gateway)


def load(
    gateway: Gateway, plan: LoadPlan, concurrency: int = 0, rate: float = 0.0
) -> dict[str, Any]:
    """One run of the load generator (closed loop if `concurrency`, else open at `rate`)."""
    out = LOG_DIR / f"http-load-{uuid.uuid4().hex[:8]}.json"
    mode = ["closed", "--concurrency", str(concurrency)] if concurrency else ["open"]
    command = [sys.executable, "-m", "benchmarks.http_load", "--url", gateway.url]
    command += ["--key", gateway.key, "--mode", *mode, "--rate", f"{rate:.1f}"]
    command += ["--seconds", str(plan.seconds), "--warmup", str(plan.warmup), "--out", str(out)]
    command += ["--watch-pid", str(gateway.worker.process.pid)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=plan.seconds + plan.warmup + 120)
    gateway.worker.assert_running()
    raw = json.loads(out.read_text())
    out.unlink()
    answered = sum(n for status, n in raw["statuses"].items() if status in _SUCCESS)
    return {
        "concurrency": concurrency or None,
        "offered_per_second": rate or None,
        "per_second": answered / plan.seconds,
        "statuses": raw["statuses"],
        "latency_ms": latency_summary(raw["latencies_ms"]),
        "gateway_cpu_share": raw["watched_cpu_share"],
        "client_cpu_share": raw["client_cpu_share"],
    }


def one_path(with_detector: bool, plan: LoadPlan) -> dict[str, Any]:
    with isolated(6) as env, system(env, with_detector) as gateway:
        closed = [load(gateway, plan, concurrency=c) for c in plan.concurrencies]
        saturation = max(closed, key=lambda run: float(run["per_second"]))
        rates = [share * saturation["per_second"] for share in plan.open_shares]
        rates += plan.open_rates
        below = [load(gateway, plan, rate=rate) for rate in rates]
        peak = gateway.worker.peak_rss_mb()
    return {
        "path": "201" if with_detector else "202",
        "closed": closed,
        "open": below,
        "saturation": saturation,
        "gateway_peak_rss_mb": peak,
    }


def describe(result: dict[str, Any]) -> str:
    top = result["saturation"]
    parts = [
        f"{result['path']}: saturation {top['per_second']:,.0f} req/s at C={top['concurrency']} "
        f"(gateway CPU {top['gateway_cpu_share']:.2f}, client CPU {top['client_cpu_share']:.2f})"
    ]
    for run in result["open"]:
        latency = run["latency_ms"]
        parts.append(
            f"at {run['offered_per_second']:,.0f}/s p50 {latency['p50']:.1f} ms "
            f"p99 {latency['p99']:.1f} ms"
        )
    return "; ".join(parts)


def metrics(path: str, results: list[dict[str, Any]], plan: LoadPlan) -> list[Metric]:
    name = f"HTTP ingest {path}"
    tops = [r["saturation"] for r in results]

    def top(
        unit: str, label: str, pick: Callable[[dict[str, Any]], float], target: str = ""
    ) -> Metric:
        return Metric(name, label, unit, [pick(t) for t in tops], target)

    found = [
        top("req/s", "saturation (closed loop)", lambda t: t["per_second"], "≥ 5,000"),
        top("ms", "p99 at saturation", lambda t: t["latency_ms"]["p99"]),
        top("cores", "gateway CPU at saturation", lambda t: t["gateway_cpu_share"]),
        top("cores", "load generator CPU at saturation", lambda t: t["client_cpu_share"]),
    ]
    if path == "201":
        found.append(top("%", "answered 201 at saturation", lambda t: _share_201(t["statuses"])))
    labels = [f"{share:.0%} of saturation" for share in plan.open_shares]
    labels += [f"{rate:,.0f} req/s" for rate in plan.open_rates]
    for index, label in enumerate(labels):
        runs = [r["open"][index] for r in results]
        for q, target in (("p50", ""), ("p99", "< 20 ms")):
            values = [run["latency_ms"][q] for run in runs]
            found.append(Metric(name, f"{q} at {label}", "ms", values, target))
    return found


def _share_201(statuses: dict[str, int]) -> float:
    return 100 * statuses.get("201", 0) / max(1, sum(statuses.values()))


def measure(rounds: int, plan: LoadPlan, with_detector: bool = True) -> Outcome:
    """Both paths per round (the 201 one unless `with_detector` is False)."""
    paths = [False, True] if with_detector else [False]
    results: dict[bool, list[dict[str, Any]]] = {path: [] for path in paths}
    for number in range(1, rounds + 1):
        for path in paths:
            results[path].append(one_path(path, plan))
            print(f"  round {number}: {describe(results[path][-1])}", flush=True)
    found = metrics("202", results[False], plan)
    if with_detector:
        found += metrics("201", results[True], plan)
    peaks = [
        max(r["gateway_peak_rss_mb"] for r in same) for same in zip(*results.values(), strict=True)
    ]
    found.append(Metric("memory", "gateway peak RSS", "MiB", peaks, "< 300"))
    return Outcome([r for path in paths for r in results[path]], found)
