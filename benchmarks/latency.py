"""End-to-end latency at a fixed offered load: `benchmarks.kafka_load` (its own process) sends
transactions straight to Kafka at a fixed rate (about 1% outliers, after baselines) while a
detector and a baseline worker run; this process reads the `verdicts` and `alerts` topics.

Latency counts from each transaction's `received_at`, stamped by the producer just before
the send. The clocks compared are all this machine's wall clock.

- committed in PostgreSQL: the CreateTime of the transaction's record on `verdicts`. The
  detector publishes a batch's verdicts only once `persist` has returned, i.e. after the
  COMMIT (detector_worker/pipeline.py), and the producer stamps the record when it is handed
  the record: an upper bound on the commit time, within about a millisecond (the stamp has
  millisecond resolution). Nothing is added to the database path (no trigger, no polling).
  The row's `persisted_at` (now() of the writing transaction, i.e. its start) is kept in
  the JSON as the lower bound.
- verdict / alert delivered: when the record arrived at this consumer (what a subscriber
  of the topic sees).
A first transaction is sent and its verdict awaited before the timed load starts, so the
detector's start-up and group join are not counted.
"""

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.harness import LOG_DIR, ROOT, connect, free_port, isolated, running
from benchmarks.stats import Metric, Outcome, latency_summary
from benchmarks.workload import baselines, produce_transactions, publish_baselines
from shared.kafka import topic_partitions


@dataclass
class Arrivals:
    """Per transaction id (text): epoch seconds."""

    verdicts: dict[str, float] = field(default_factory=dict)  # arrived here
    committed: dict[str, float] = field(default_factory=dict)  # verdict record CreateTime
    alerts: dict[str, float] = field(default_factory=dict)  # arrived here
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def _consumer(env: dict[str, str]) -> AIOKafkaConsumer:
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    partitions = [
        TopicPartition(topic, p)
        for topic in (env["TOPIC_VERDICTS"], env["TOPIC_ALERTS"])
        for p in await topic_partitions(bootstrap, topic)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return consumer


async def _collect(consumer: AIOKafkaConsumer, verdicts_topic: str, arrivals: Arrivals) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        now = time.time()
        for tp, records in batches.items():
            for record in records:
                key = record.key.decode()
                if tp.topic == verdicts_topic:
                    arrivals.verdicts.setdefault(key, now)
                    arrivals.committed.setdefault(key, record.timestamp / 1000)
                else:
                    arrivals.alerts.setdefault(key, now)
        arrivals.changed.set()


async def _until(arrivals: Arrivals, done: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait, re-checking `done` whenever the collector took in a batch."""
    try:
        async with asyncio.timeout(seconds):
            while not done():
                arrivals.changed.clear()
                await arrivals.changed.wait()
    except TimeoutError as exc:
        raise TimeoutError(f"timed out after {seconds}s waiting for {what}") from exc


async def _load(env: dict[str, str], rate: float, seconds: float) -> dict[str, Any]:
    out = LOG_DIR / f"kafka-load-{uuid.uuid4().hex[:8]}.json"
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "benchmarks.kafka_load", "--rate", str(rate)],
        *["--seconds", str(seconds), "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, **env},
    )
    if await process.wait() != 0:
        raise RuntimeError("benchmarks.kafka_load failed")
    sent: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return sent


async def observe(
    env: dict[str, str], rate: float, seconds: float
) -> tuple[Arrivals, dict[str, Any], float]:
    """(arrivals, what the load sent, when the timed load started)."""
    consumer = await _consumer(env)
    arrivals = Arrivals()
    collecting = asyncio.create_task(_collect(consumer, env["TOPIC_VERDICTS"], arrivals))
    try:
        await produce_transactions(env["KAFKA_BOOTSTRAP_SERVERS"], env["TOPIC_TRANSACTIONS"], 1)
        await _until(arrivals, lambda: bool(arrivals.verdicts), 120, "the first verdict")
        started = time.time()
        sent = await _load(env, rate, seconds)
        expected = sent["sent"] + 1
        await _until(arrivals, lambda: len(arrivals.verdicts) >= expected, 300, "every verdict")
    finally:
        collecting.cancel()
        with suppress(asyncio.CancelledError):
            await collecting
        await consumer.stop()
    return arrivals, sent, started


def _stamps(env: dict[str, str], since: float) -> dict[str, tuple[float, float]]:
    """id -> (received_at, persisted_at) of the transactions of the timed load."""
    query = """
        SELECT id::text, extract(epoch FROM received_at)::float8,
               extract(epoch FROM persisted_at)::float8
        FROM transactions WHERE received_at >= to_timestamp(%s)
    """
    with connect(env) as conn:
        return {row[0]: (row[1], row[2]) for row in conn.execute(query, (since,))}


def _latencies(stamps: dict[str, tuple[float, float]], at: dict[str, float]) -> list[float]:
    return [(at[i] - received) * 1000 for i, (received, _) in stamps.items() if i in at]


def one_round(rate: float, seconds: float) -> dict[str, Any]:
    with isolated(6) as env:
        now = datetime.now(UTC)
        asyncio.run(
            publish_baselines(
                env["KAFKA_BOOTSTRAP_SERVERS"], env["TOPIC_BASELINES"], baselines(now)
            )
        )
        ports = free_port(), free_port()
        local = {"METRICS_HOST": "127.0.0.1"}
        detector_env = env | local | {"METRICS_PORT": str(ports[0])}
        # Recomputes every 10 s (60 s by default), so the run includes some over the new rows.
        baseline_env = env | local | {"METRICS_PORT": str(ports[1])}
        baseline_env["RECOMPUTE_INTERVAL_SECONDS"] = "10"
        with (
            running("detector_worker", detector_env) as detector,
            running("baseline_worker", baseline_env) as baseline_worker,
        ):
            detector.wait_healthy(f"http://127.0.0.1:{ports[0]}/health")
            baseline_worker.wait_healthy(f"http://127.0.0.1:{ports[1]}/health")
            arrivals, sent, since = asyncio.run(observe(env, rate, seconds))
            peaks = {
                "detector": detector.peak_rss_mb(),
                "baseline_worker": baseline_worker.peak_rss_mb(),
            }
        stamps = _stamps(env, since)
    lower = [(persisted - received) * 1000 for received, persisted in stamps.values()]
    return {
        "offered_per_second": rate,
        "sent": sent["sent"],
        "sent_per_second": sent["sent"] / sent["seconds"],
        "producer_max_behind_ms": sent["max_behind_ms"],
        "stored": len(stamps),
        "alerts": sum(1 for i in stamps if i in arrivals.alerts),
        "committed_ms": latency_summary(_latencies(stamps, arrivals.committed)),
        "persisted_at_lower_bound_ms": latency_summary(lower),
        "verdict_delivered_ms": latency_summary(_latencies(stamps, arrivals.verdicts)),
        "alert_delivered_ms": latency_summary(_latencies(stamps, arrivals.alerts)),
        "peak_rss_mb": peaks,
    }


def describe(result: dict[str, Any]) -> str:
    parts = [f"{result['sent']:,} at {result['sent_per_second']:,.0f}/s"]
    for key, label in (("committed_ms", "in PostgreSQL"), ("alert_delivered_ms", "alerts")):
        s = result[key]
        parts.append(
            f"{label} p50 {s['p50']:.1f} p99 {s['p99']:.1f} max {s['max']:.1f} ms (n={s['count']})"
        )
    return "; ".join(parts)


def measure(rounds: int, rate: float, seconds: float) -> Outcome:
    results = []
    for number in range(1, rounds + 1):
        results.append(one_round(rate, seconds))
        print(f"  round {number}: {describe(results[-1])}", flush=True)
    name = f"end-to-end latency @ {rate:,.0f} tx/s"
    found = []
    for key, label in (
        ("committed_ms", "committed in PostgreSQL"),
        ("verdict_delivered_ms", "verdict delivered"),
        ("alert_delivered_ms", "alert delivered"),
    ):
        for q in ("p50", "p99", "max"):
            found.append(Metric(name, f"{label} {q}", "ms", [r[key][q] for r in results]))
    for worker in ("detector", "baseline_worker"):
        peaks = [r["peak_rss_mb"][worker] for r in results]
        label = f"{worker.replace('_', ' ')} peak RSS (latency run)"
        found.append(Metric("memory", label, "MiB", peaks, "< 300"))
    return Outcome(results, found)
