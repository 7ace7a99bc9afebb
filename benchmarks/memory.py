"""Detector memory with many baseline scopes: `scopes` merchant baselines (plus the 20
category ones) on the baselines topic, a detector started, which loads them all into its
in-memory table before it scores anything; then transactions against those merchants. The
peak resident set size (VmHWM of /proc/<pid>/status) is read once the detector has stored
them all. (The other workers' peaks are read at the end of the runs that use them.)
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

from benchmarks.harness import Worker, free_port, get_json, isolated, persisted, wait_until
from benchmarks.stats import Metric, Outcome
from benchmarks.workload import baselines, produce_transactions, publish_baselines


def one_round(scopes: int, transactions: int) -> dict[str, Any]:
    merchants = [f"merchant-{i}" for i in range(scopes)]
    with isolated(3) as env:
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        items = baselines(datetime.now(UTC), merchants)
        asyncio.run(publish_baselines(bootstrap, env["TOPIC_BASELINES"], items))
        port = free_port()
        health = f"http://127.0.0.1:{port}/health"
        detector = Worker("detector_worker", env | {"METRICS_PORT": str(port)})
        try:
            detector.wait_healthy(health, timeout=300)
            held = int(get_json(health)["baseline_scopes"])
            rss_loaded = detector.rss_mb()
            topic = env["TOPIC_TRANSACTIONS"]
            asyncio.run(produce_transactions(bootstrap, topic, transactions, merchants=merchants))
            wait_until(lambda: _stored(env, detector) >= transactions, 600, "the transactions")
            peak, rss = detector.peak_rss_mb(), detector.rss_mb()
        finally:
            detector.stop()
    return {
        "scopes_held": held,
        "transactions": transactions,
        "rss_after_loading_mb": rss_loaded,
        "rss_mb": rss,
        "peak_rss_mb": peak,
    }


def _stored(env: dict[str, str], detector: Worker) -> int:
    detector.assert_running()
    return persisted(env)


def measure(rounds: int, scopes: int, transactions: int) -> Outcome:
    results = []
    for number in range(1, rounds + 1):
        results.append(one_round(scopes, transactions))
        r = results[-1]
        print(
            f"  round {number}: {r['scopes_held']:,} scopes held: RSS "
            f"{r['rss_after_loading_mb']:.0f} MiB loaded, peak {r['peak_rss_mb']:.0f} MiB "
            f"after {transactions:,} transactions",
            flush=True,
        )
    label = f"detector peak RSS, {scopes:,} scopes"
    peaks = [r["peak_rss_mb"] for r in results]
    return Outcome(results, [Metric("memory", label, "MiB", peaks, "< 300")])
