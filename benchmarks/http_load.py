"""HTTP load generator for `POST /transactions`, run as its own process (so that its CPU is
not the gateway's): writes what it measured as JSON to --out.

    .venv/bin/python -m benchmarks.http_load --url http://127.0.0.1:8000 --key KEY \
        --mode closed --concurrency 64 --seconds 10 --out /tmp/load.json

closed: `concurrency` connections, each sending its next request as soon as the previous one
        is answered (finds the saturation throughput).
open:   requests start at a fixed `rate` whatever the answers do; a request's latency counts
        from the moment it was due, so a stalled server is not hidden by the client waiting
        (no coordinated omission).
Requests started during the first --warmup seconds are sent but not counted.
"""

import argparse
import asyncio
import json
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness import cpu_seconds
from benchmarks.workload import http_body

# Open loop: connections the client may open at most; beyond that requests queue (and the
# queueing counts in their latency).
_OPEN_LOOP_CONNECTIONS = 1024


@dataclass(frozen=True)
class Sample:
    due: float  # perf_counter when the request was due (open) or sent (closed)
    seconds: float
    status: int  # 0: no answer (connection error, timeout)


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, key: str, bodies: list[bytes]):
        self._session = session
        self._url = f"{url}/transactions"
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._bodies = bodies

    async def post(self, index: int, due: float) -> Sample:
        body = self._bodies[index % len(self._bodies)]
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as reply:
                await reply.read()
                status = reply.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        return Sample(due, time.perf_counter() - due, status)


async def closed_loop(client: Client, concurrency: int, until: float) -> list[Sample]:
    samples: list[Sample] = []

    async def connection(first: int) -> None:
        index = first
        while (now := time.perf_counter()) < until:
            samples.append(await client.post(index, now))
            index += concurrency

    await asyncio.gather(*(connection(n) for n in range(concurrency)))
    return samples


async def open_loop(client: Client, rate: float, start: float, until: float) -> list[Sample]:
    tasks: list[asyncio.Task[Sample]] = []
    index = 0
    while (due := start + index / rate) < until:
        if (ahead := due - time.perf_counter()) > 0:
            await asyncio.sleep(ahead)
        tasks.append(asyncio.create_task(client.post(index, due)))
        index += 1
    return list(await asyncio.gather(*tasks))


class CpuWatch:
    """CPU used over the measured period, by this process and by the watched one (--watch-pid,
    the gateway): the warm-up and the processes' start-up are left out."""

    def __init__(self, watched: int | None) -> None:
        self._watched = watched
        self._at = time.perf_counter()
        self._own, self._other = _cpu_seconds(), self._watched_cpu()

    def _watched_cpu(self) -> float:
        return cpu_seconds(self._watched) if self._watched else math.nan

    def shares(self) -> tuple[float, float]:
        """(this process, the watched one), in cores."""
        elapsed = time.perf_counter() - self._at
        own, other = _cpu_seconds() - self._own, self._watched_cpu() - self._other
        return own / elapsed, other / elapsed


async def _watch_after(seconds: float, pid: int | None) -> CpuWatch:
    await asyncio.sleep(seconds)
    return CpuWatch(pid)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng, now = random.Random(args.seed), datetime.now(UTC)
    bodies = [json.dumps(http_body(rng, now)).encode() for _ in range(2_000)]
    limit = args.concurrency if args.mode == "closed" else _OPEN_LOOP_CONNECTIONS
    connector = aiohttp.TCPConnector(limit=limit)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = Client(session, args.url, args.key, bodies)
        start = time.perf_counter()
        until = start + args.warmup + args.seconds
        watch = asyncio.create_task(_watch_after(args.warmup, args.watch_pid))
        if args.mode == "closed":
            samples = await closed_loop(client, args.concurrency, until)
        else:
            samples = await open_loop(client, args.rate, start, until)
    client_cpu, watched_cpu = (await watch).shares()
    counted = [s for s in samples if s.due >= start + args.warmup]
    return {
        "mode": args.mode,
        "concurrency": args.concurrency if args.mode == "closed" else None,
        "rate": args.rate if args.mode == "open" else None,
        "seconds": args.seconds,
        "requests": len(counted),
        "statuses": dict(Counter(str(s.status) for s in counted)),
        "latencies_ms": [round(s.seconds * 1000, 3) for s in counted],
        "client_cpu_share": client_cpu,
        "watched_cpu_share": watched_cpu,
    }


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", required=True, help="the gateway, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key the gateway accepts")
    parser.add_argument("--mode", choices=["closed", "open"], required=True)
    parser.add_argument("--concurrency", type=int, default=64, help="closed loop")
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop, requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured period")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--watch-pid", type=int, help="also report this process's CPU use")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
