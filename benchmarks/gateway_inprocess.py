"""The gateway's own work per request, in one process: no socket, no broker, no database.

The application `create_app` builds for the tree given (a checkout, or `git archive` of a
commit), its middlewares and handlers as they are, served by aiohttp's own protocol over a
transport that keeps what is written; POST /transactions requests (wrk's bodies) are fed one
at a time on one keep-alive connection. The producer is a stand-in that acknowledges on the
next loop turn; on the 201 path it also hands the verdict waiter a verdict for the id (a
detector's record with its ~1 KB baseline), as the verdicts consumer would. So what is
measured is the gateway's code and aiohttp's, without aiokafka's and the kernel's.

Two measures: the process CPU time per request (best of `--repeats`), which moves with the
machine's other load; and with `--instructions`, the instructions per request counted by
valgrind's callgrind (installed with `apt-get install valgrind`), the same to 0.2 % from run
to run on a loaded machine, ~1 minute a run. `gateway_ab --in-process` runs this for each
commit in alternation.

    python benchmarks/gateway_inprocess.py . --path 202 --requests 3000
    python benchmarks/gateway_inprocess.py /tmp/tree --path 201 --instructions
"""

import argparse
import asyncio
import functools
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

_KEY = "in-process-benchmark-key-0123456789"
_CATEGORIES = ("groceries", "dining", "fuel", "travel")
_MERCHANTS = ("Lidl", "Nandos", "Shell", "Ryanair")
_SIMILAR_REQUESTS = 2000  # distinct bodies, cycled


def _requests(path: str) -> list[bytes]:
    """wrk's requests (benchmarks/post.lua): random amounts and dates, four scopes."""
    target = "/transactions" if path == "201" else "/transactions?wait=false"
    made = []
    for index in range(_SIMILAR_REQUESTS):
        scope = index % 4
        body = (
            f'{{"amount":{10 + (index * 7919 % 9000) / 100:.2f},"category":"{_CATEGORIES[scope]}",'
            f'"merchant":"{_MERCHANTS[scope]}","transaction_date":"2026-11-30T12:'
            f'{index % 60:02d}:{index * 7 % 60:02d}Z","currency":"EUR"}}'
        ).encode()
        head = (
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: Bearer {_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        made.append(head.encode() + body)
    return made


class _Transport(asyncio.Transport):
    """Keeps the last answer and wakes the driver when one is written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: asyncio.Future[bytes] | None = None
        self.last = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        self.last = bytes(data)
        if self.written is not None and not self.written.done():
            self.written.set_result(self.last)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        return None

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def get_write_buffer_size(self) -> int:
        return 0


def _verdict_template() -> bytes:
    """A detector's verdict record with a baseline, the id as TXN."""
    from benchmarks.workload import baselines
    from schemas import Verdict, encode_model

    now = datetime.now(UTC)
    scored = Verdict(
        transaction_id=UUID(int=0),
        anomaly=False,
        rule="tail",
        z_score=0.7,
        tail_probability=0.3,
        baseline=baselines(now)[0],
        scored_at=now,
    )
    return encode_model(scored).replace(b"00000000-0000-0000-0000-000000000000", b"TXN")


def _serve(path: str, log_level: str) -> tuple[asyncio.AbstractEventLoop, Any, _Transport]:
    """The tree's application on a stand-in connection: (loop, protocol, transport)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    protocol, transport = loop.run_until_complete(_connected(path, log_level))
    return loop, protocol, transport


async def _connected(path: str, log_level: str) -> tuple[Any, _Transport]:
    from prometheus_client import CollectorRegistry

    from ingest_gateway import context
    from ingest_gateway.app import create_app
    from ingest_gateway.publishing import Publisher
    from ingest_gateway.server import GatewayRunner
    from ingest_gateway.settings import GatewaySettings
    from ingest_gateway.verdicts import VerdictWaiter
    from shared.logging import configure_logging

    unlimited = 1e9
    settings = GatewaySettings(
        database_url="postgresql://bench@127.0.0.1:1/bench",
        api_keys_sha256=f"bench:{hashlib.sha256(_KEY.encode()).hexdigest()}",
        rate_limit_rps=unlimited,
        rate_limit_burst=unlimited,
        global_rate_limit_rps=unlimited,
        global_rate_limit_burst=unlimited,
        verdict_wait_seconds=2.0 if path == "201" else 0.0,
        log_level=log_level,
    )
    configure_logging(log_level, "ingest_gateway")
    app = create_app(settings, CollectorRegistry())
    app.cleanup_ctx.clear()  # no database, no broker
    waiter = VerdictWaiter("127.0.0.1:1", "verdicts", settings.verdict_wait_seconds)
    verdict = _verdict_template() if path == "201" else None

    class Producer:
        async def send_and_wait(self, topic: str, key: bytes, value: bytes) -> None:
            loop = asyncio.get_running_loop()
            acked = loop.create_future()
            loop.call_soon(acked.set_result, None)
            await acked
            if verdict is not None:
                loop.call_soon(waiter._resolve, key, verdict.replace(b"TXN", key))

    class Producers:
        current = Producer()
        started = True  # as a gateway connected to Kafka (POSTs check it first)

        def renew_soon(self, *_: object) -> None:
            return None

    producers: Any = Producers()
    app[context.PRODUCER] = producers
    app[context.PUBLISHER] = Publisher(producers, "transactions", 30.0, app[context.METRICS])
    app[context.VERDICTS] = waiter
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    protocol = runner.server()
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport


def _child(tree: Path, path: str, requests: int, repeats: int, log_level: str, count: bool) -> None:
    """Runs in the measured process, with the tree's packages first on the path."""
    sys.path.insert(0, str(tree))
    os.chdir(tree)
    loop, protocol, transport = _serve(path, log_level)
    made = _requests(path)

    async def drive(count: int) -> None:
        for index in range(count):
            transport.written = loop.create_future()
            protocol.data_received(made[index % _SIMILAR_REQUESTS])
            await transport.written

    loop.run_until_complete(drive(_SIMILAR_REQUESTS))  # warm: caches, series, the first second
    expected = b"HTTP/1.1 201" if path == "201" else b"HTTP/1.1 202"
    if not transport.last.startswith(expected):
        raise RuntimeError(f"unexpected answer: {transport.last[:400]!r}")
    if count:
        # Instrument from here; callgrind collects inside functools.reduce only.
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)

        def measured(_: int, __: int) -> int:
            loop.run_until_complete(drive(requests))
            return 0

        functools.reduce(measured, [0, 0])
        return
    best = min(_timed(loop, drive, requests) for _ in range(repeats))
    print(f"CPU {1e6 * best / requests:.1f} µs/request")


def _timed(loop: asyncio.AbstractEventLoop, drive: Any, requests: int) -> float:
    started = time.process_time()
    loop.run_until_complete(drive(requests))
    return time.process_time() - started


def measure(
    tree: Path, path: str, requests: int, log_level: str, instructions: bool, repeats: int = 5
) -> float:
    """µs of CPU per request (best of `repeats`), or instructions per request."""
    command = [sys.executable, str(Path(__file__).resolve()), str(tree), "--path", path]
    command += ["--requests", str(requests), "--log-level", log_level, "--repeats", str(repeats)]
    if not instructions:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        return float(re.findall(r"CPU ([0-9.]+)", done.stdout)[-1])
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        valgrind += ["--toggle-collect=functools_reduce", f"--callgrind-out-file={out}"]
        subprocess.run([*valgrind, *command, "--child-counts"], capture_output=True, check=True)
        totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if totals is None:
            raise RuntimeError("callgrind wrote no total")
        return int(totals.group(1)) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tree", type=Path, help="a checkout of the repository")
    parser.add_argument("--path", choices=("201", "202"), default="202")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--log-level", default="info", help="info writes the access log")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--child-counts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_counts:
        _child(args.tree, args.path, args.requests, args.repeats, args.log_level, count=True)
    elif args.instructions:
        per_request = measure(args.tree, args.path, args.requests, args.log_level, True)
        print(f"{per_request:,.0f} instructions/request")
    else:
        _child(args.tree, args.path, args.requests, args.repeats, args.log_level, count=False)


if __name__ == "__main__":
    main()
