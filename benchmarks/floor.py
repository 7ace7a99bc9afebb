"""The floor of the mandated stack: what aiohttp, aiokafka's idempotent acks=all producers,
the broker, a durable PostgreSQL commit and the verdict back over Kafka cost per request with
none of our own code in them, beside our real gateway and detector (issue 17).

Variants, all up at once in one environment (the round's schema and topics as
benchmarks/verdict_path.py makes them, plus two topics of the floor's own), loaded in turn:

- `bare`: an aiohttp handler that reads the body and answers a constant 201 JSON;
- `produce`: it sends the body with `shared.kafka.make_producer(linger_ms=0)` (idempotent,
  acks=all), awaits the ack and answers a constant 202;
- `roundtrip`: `produce`, plus a consumer process (a plain aiokafka group consumer:
  `getmany`, one `INSERT ... SELECT unnest(...) ON CONFLICT DO NOTHING` of the batch's raw
  rows and one commit, `synchronous_commit` on; one verdict record per input with acks=all;
  then the offsets committed) and the handler awaiting its verdict from a verdicts consumer
  in the HTTP process (a dict of futures keyed by the request id); answers the verdict, 201;
- `jalytics-202`, `jalytics-201`: our gateway and detector, as verdict_path.py starts them.

Each round runs `wrk -t2 -c C` (verdict_path.py's, with benchmarks/post.lua) against every
variant at every concurrency, the variants' order reversed every other round; the CPU per
request of each process (HTTP process, consumer or detector, the broker, the variant's
PostgreSQL backends) from /proc over each run.

    .venv/bin/python -m benchmarks.floor --rounds 4 --seconds 5  # ~8 min
    .venv/bin/python -m benchmarks.floor serve --mode roundtrip ...  # a floor process alone
"""

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg import sql

from benchmarks.harness import Worker, connect, free_port, isolated, wait_until
from benchmarks.machine import describe_machine, git_state, load_average
from benchmarks.support import delete_topics
from benchmarks.verdict_path import (
    Target,
    backends,
    jalytics,
    listening_pids,
    measured,
    reference,
    wrk,
)
from benchmarks.verdict_path import (
    _line as run_line,
)
from shared.kafka import TopicSpec, ensure_topics, make_producer, topic_partitions

_ACCEPTED = b'{"status":"accepted"}'
_CREATED = b'{"status":"created"}'
_VERDICT = b'{"anomalous":false}'
_PARTITIONS = 6
# variant -> the query string its POST /transactions takes
VARIANTS = {
    "bare": "",
    "produce": "",
    "roundtrip": "",
    "roundtrip-1s": "",
    "jalytics-202": "?wait=false",
    "jalytics-201": "",
    "go-original": "",  # only with --reference: another service taking the same body
}
FLOOR_MODES = ("bare", "produce", "roundtrip")
# floor variant -> (its HTTP server's mode, the consumer's seconds between offset commits:
# 0 commits after every batch; 1 as our detector's Faust does, broker_commit_interval=1.0)
FLOOR_VARIANTS = {
    "bare": ("bare", 0.0),
    "produce": ("produce", 0.0),
    "roundtrip": ("roundtrip", 0.0),
    "roundtrip-1s": ("roundtrip", 1.0),
}
_TRIPS = [name for name, (mode, _) in FLOOR_VARIANTS.items() if mode == "roundtrip"]
Finder = Callable[[], list[int]]  # the pids a process's CPU is read from, re-read per run

# --- the floor's own processes (python -m benchmarks.floor serve / consume) ---------------


def floor_app(mode: str, bootstrap: str, topic: str, verdicts: str) -> web.Application:
    """The HTTP floor: a body read and a constant answer, plus the Kafka hops of `mode`."""
    app = web.Application()
    waiting: dict[bytes, asyncio.Future[bytes]] = {}
    ids = itertools.count()
    prefix = uuid.uuid4().hex[:8]

    async def bare(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201, body=_CREATED, content_type="application/json")

    async def produce(request: web.Request) -> web.Response:
        body = await request.read()
        key = f"{prefix}-{next(ids)}".encode()
        await app["producer"].send_and_wait(topic, body, key=key)
        return web.Response(status=202, body=_ACCEPTED, content_type="application/json")

    async def roundtrip(request: web.Request) -> web.Response:
        body = await request.read()
        key = f"{prefix}-{next(ids)}".encode()
        future = waiting[key] = asyncio.get_running_loop().create_future()
        try:
            await app["producer"].send_and_wait(topic, body, key=key)
            async with asyncio.timeout(2.0):
                verdict = await future
        finally:
            waiting.pop(key, None)
        return web.Response(status=201, body=verdict, content_type="application/json")

    handlers = {"bare": bare, "produce": produce, "roundtrip": roundtrip}
    app.router.add_post("/transactions", handlers[mode])
    if mode != "bare":
        app.cleanup_ctx.append(_producer(bootstrap))
    if mode == "roundtrip":
        app.cleanup_ctx.append(_verdict_waiter(bootstrap, verdicts, waiting))
    return app


def _producer(bootstrap: str) -> Callable[[web.Application], Any]:
    async def context(app: web.Application) -> Any:
        app["producer"] = producer = make_producer(bootstrap, linger_ms=0)
        await producer.start()
        yield
        await producer.stop()

    return context


def _verdict_waiter(
    bootstrap: str, topic: str, waiting: dict[bytes, "asyncio.Future[bytes]"]
) -> Callable[[web.Application], Any]:
    """Every partition of the verdicts topic from its end, each verdict handed to its waiter."""

    async def follow(consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    future = waiting.get(record.key)
                    if future is not None and not future.done():
                        future.set_result(record.value)

    async def context(app: web.Application) -> Any:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        task = asyncio.create_task(follow(consumer))
        yield
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await consumer.stop()

    return context


_INSERT = (
    "INSERT INTO floor_rows (key, body) SELECT * FROM unnest(%s::bytea[], %s::bytea[])"
    " ON CONFLICT (key) DO NOTHING"
)


def batch_rows(records: Sequence[Any]) -> tuple[list[bytes], list[bytes]]:
    """The columns of one batch's insert: keys and raw values, as the records carry them."""
    return [record.key for record in records], [record.value for record in records]


async def consume(
    bootstrap: str, topic: str, verdicts: str, group: str, dsn: str, schema: str, every: float
) -> None:
    """The detector's floor: fetch, one insert and commit, a verdict each, and the offsets
    (after every batch, or after the first batch `every` seconds after the last commit)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = make_producer(bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    conn = await psycopg.AsyncConnection.connect(dsn, options=f"-c search_path={schema}")
    loop = asyncio.get_running_loop()
    committed = loop.time()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            records = [record for part in batches.values() for record in part]
            if not records:
                continue
            async with conn.transaction():
                await conn.execute(_INSERT, batch_rows(records))
            sent = [await producer.send(verdicts, _VERDICT, key=r.key) for r in records]
            await asyncio.gather(*sent)
            if loop.time() - committed >= every:
                await consumer.commit()
                committed = loop.time()
    finally:
        await conn.close()
        await producer.stop()
        await consumer.stop()


# --- the run ------------------------------------------------------------------------------


def _floor_topics(env: dict[str, str], variant: str) -> dict[str, str]:
    suffix = env["DATABASE_SCHEMA"].removeprefix("bench_")
    return {
        "topic": f"floor-{variant}-transactions-{suffix}",
        "verdicts": f"floor-{variant}-verdicts-{suffix}",
    }


def _prepare(env: dict[str, str], topics: list[str]) -> None:
    """The floor's topics and its scratch table (in the round's schema, dropped with it)."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    asyncio.run(ensure_topics(bootstrap, [TopicSpec(t, _PARTITIONS, 1) for t in topics]))
    for name in topics:
        asyncio.run(topic_partitions(bootstrap, name))
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        table = sql.Identifier(env["DATABASE_SCHEMA"], "floor_rows")
        conn.execute(sql.SQL("CREATE TABLE {} (key bytea PRIMARY KEY, body bytea)").format(table))


def _answers(url: str) -> bool:
    # localhost, a URL this module built
    request = urllib.request.Request(f"{url}/transactions", data=b"{}", method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - localhost
            return int(response.status) in (201, 202)
    except OSError:  # not listening yet, or the round trip not ready (a 500 after 2 s)
        return False


def _floor_target(stack: ExitStack, variant: str, env: dict[str, str], broker: Finder) -> Target:
    """One floor variant's processes, up and answering; its Target for the CPU readings."""
    mode, every = FLOOR_VARIANTS[variant]
    topics = _floor_topics(env, variant)
    kafka = ["--bootstrap", env["KAFKA_BOOTSTRAP_SERVERS"], "--topic", topics["topic"]]
    kafka += ["--verdicts", topics["verdicts"]]
    processes: dict[str, Finder] = {}
    if mode == "roundtrip":
        app = f"floor-{uuid.uuid4().hex[:8]}"
        database = ["--dsn", env["DATABASE_URL"], "--schema", env["DATABASE_SCHEMA"]]
        database += ["--commit-every", str(every)]
        consumer = Worker(
            "benchmarks.floor", {"PGAPPNAME": app}, "consume", *kafka, "--group", app, *database
        )
        stack.callback(consumer.stop)
        processes["consumer"] = lambda: [consumer.process.pid]
        processes["postgresql"] = lambda: backends(env["DATABASE_URL"], app)
    port = free_port()
    server = Worker("benchmarks.floor", {}, "serve", "--mode", mode, "--port", str(port), *kafka)
    stack.callback(server.stop)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        server.assert_running()
        return _answers(url)

    wait_until(up, 90, f"the floor's {variant} server")
    return Target(
        variant, url, "", {"gateway": lambda: [server.process.pid], "broker": broker} | processes
    )


@contextmanager
def variants(env: dict[str, str]) -> Iterator[dict[str, Target]]:
    """Every variant up at once on the round's environment."""
    topics = [t for v in FLOOR_VARIANTS for t in _floor_topics(env, v).values()]
    _prepare(env, topics)
    broker = partial(listening_pids, int(env["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]))
    with ExitStack() as stack:
        stack.callback(_drop_topics, env["KAFKA_BOOTSTRAP_SERVERS"], topics)
        targets = {v: _floor_target(stack, v, env, broker) for v in FLOOR_VARIANTS}
        ours = stack.enter_context(jalytics(env))
        targets["jalytics-202"] = targets["jalytics-201"] = ours
        yield targets


def _drop_topics(bootstrap: str, names: list[str]) -> None:
    with suppress(Exception):  # leftover topics cost disk only, never a wrong number
        asyncio.run(delete_topics(bootstrap, names))


def run(
    rounds: int, concurrencies: list[int], seconds: float, reference: Target | None = None
) -> dict[str, Any]:
    """Every run, and the rows the floor's consumers wrote (each round trip's durable write:
    at least one per 201 the floor answered)."""
    runs: list[dict[str, Any]] = []
    with isolated(_PARTITIONS) as env, variants(env) as targets:
        if reference is not None:
            targets[reference.name] = reference
        for name, target in targets.items():  # warm-up: connections, group joins, pools
            wrk(f"{target.url}/transactions{VARIANTS[name]}", target.key, 16, 3)
        names = [name for name in VARIANTS if name in targets]
        for number in range(rounds):
            for connections in concurrencies:
                for name in names if number % 2 == 0 else names[::-1]:
                    found = measured(targets[name], VARIANTS[name], connections, seconds)
                    runs.append({"variant": name, "c": connections, "round": number} | found)
                    label = {"target": f"round {number}", "path": name}
                    print(run_line(runs[-1] | label), flush=True)
        with connect(env) as conn:
            row = conn.execute("SELECT count(*) FROM floor_rows").fetchone()
    return {"runs": runs, "floor_rows": int(row[0]) if row else 0}


# --- the summary (pure) -------------------------------------------------------------------

# Each of our processes, and the floor's process doing its part of the work.
COUNTERPARTS = {"gateway": "gateway", "detector": "consumer", "broker": "broker"}
COUNTERPARTS |= {"postgresql": "postgresql"}
# Our variant, and the floor variant it is read against.
PAIRS = [
    ("jalytics-201", "roundtrip-1s"),
    ("jalytics-201", "roundtrip"),
    ("jalytics-202", "produce"),
]


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def total_cpu(run: dict[str, Any]) -> float:
    return float(sum(run["cpu_ms_per_request"].values()))


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant and concurrency, in the order first run: the rounds' medians and spread of
    the rate, p50, p99, and the CPU-ms per request of each process and in total."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for one in runs:
        groups.setdefault((one["variant"], one["c"]), []).append(one)
    rows = []
    for (variant, connections), same in groups.items():
        processes = same[0]["cpu_ms_per_request"]
        rows.append(
            {
                "variant": variant,
                "c": connections,
                "n": len(same),
                **{
                    key: spread([r[key] for r in same])
                    for key in ("per_second", "p50_ms", "p99_ms")
                },
                "cpu_ms": {
                    p: spread([r["cpu_ms_per_request"][p] for r in same]) for p in processes
                },
                "total_cpu_ms": spread([total_cpu(r) for r in same]),
            }
        )
    return rows


def _pairs(
    runs: Sequence[dict[str, Any]], mine: str, theirs: str
) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    """(concurrency, the run of `mine`, the run of `theirs`) for each round that has both."""
    by_key = {(r["variant"], r["c"], r["round"]): r for r in runs}
    for (name, connections, number), run_of_mine in by_key.items():
        other = by_key.get((theirs, connections, number))
        if name == mine and other is not None:
            yield connections, run_of_mine, other


def paired_gaps(runs: Sequence[dict[str, Any]], ours: str, floor: str) -> dict[int, dict[str, Any]]:
    """Per concurrency, our CPU per request minus the floor's, in µs, process by process and
    in total, taken within each round (the two runs minutes apart at most) and then summed up
    over rounds. A process the floor has not got counts 0 there: all of ours is above it."""
    found: dict[int, dict[str, list[float]]] = {}
    for connections, mine, other in _pairs(runs, ours, floor):
        gaps = found.setdefault(connections, {})
        for process, value in mine["cpu_ms_per_request"].items():
            base = other["cpu_ms_per_request"].get(COUNTERPARTS.get(process, process), 0.0)
            gaps.setdefault(process, []).append(1000 * (value - base))
        gaps.setdefault("total", []).append(1000 * (total_cpu(mine) - total_cpu(other)))
    return {c: {p: spread(v) for p, v in gaps.items()} for c, gaps in found.items()}


# The variants read against the reference, when there is one.
_AGAINST = ("roundtrip-1s", "roundtrip", "jalytics-201", "produce", "jalytics-202")


def paired_ratios(runs: Sequence[dict[str, Any]], variant: str, other: str) -> dict[int, Any]:
    """Per concurrency, `variant` over `other` within each round: req/s, p99 and total CPU
    per request, then summed up over rounds."""
    found: dict[int, dict[str, list[float]]] = {}
    for connections, mine, theirs in _pairs(runs, variant, other):
        ratios = found.setdefault(connections, {"per_second": [], "p99_ms": [], "cpu": []})
        ratios["per_second"].append(mine["per_second"] / theirs["per_second"])
        ratios["p99_ms"].append(mine["p99_ms"] / theirs["p99_ms"])
        ratios["cpu"].append(total_cpu(mine) / total_cpu(theirs))
    return {c: {k: spread(v) for k, v in ratios.items()} for c, ratios in found.items()}


def _cell(value: dict[str, float], digits: int) -> str:
    return f"{value['median']:,.{digits}f} [{value['min']:,.{digits}f}-{value['max']:,.{digits}f}]"


def tables(runs: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| variant | C | n | req/s | p50 ms | p99 ms | gateway | consumer / detector | broker "
        "| PostgreSQL | total (CPU-ms/req) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(summarize(runs), key=lambda r: (r["c"], list(VARIANTS).index(r["variant"]))):
        cpu = row["cpu_ms"]
        worker = cpu.get("detector") or cpu.get("consumer")
        server = cpu.get("gateway") or cpu.get("service")  # the reference's one process
        cells = [server, worker, cpu.get("broker"), cpu.get("postgresql")]
        lines.append(
            f"| {row['variant']} | {row['c']} | {row['n']} | {_cell(row['per_second'], 0)} | "
            f"{_cell(row['p50_ms'], 1)} | {_cell(row['p99_ms'], 1)} | "
            + " | ".join(_cell(c, 3) if c else "" for c in cells)
            + f" | {_cell(row['total_cpu_ms'], 3)} |"
        )
    lines += [
        "",
        "| ours - floor, µs CPU per request (paired per round) | C | gateway "
        "| detector - consumer | broker | PostgreSQL | total |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for ours, floor in PAIRS:
        for connections, gaps in sorted(paired_gaps(runs, ours, floor).items()):
            cells = [gaps.get(p) for p in ("gateway", "detector", "broker", "postgresql", "total")]
            lines.append(
                f"| {ours} - {floor} | {connections} | "
                + " | ".join(_cell(c, 0) if c else "" for c in cells)
                + " |"
            )
    lines += _ratio_lines(runs)
    return "\n".join(lines)


def _ratio_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    if not any(r["variant"] == "go-original" for r in runs):
        return []
    lines = ["", "| over go-original, per round | C | req/s | p99 | total CPU per request |"]
    lines.append("|---|---:|---:|---:|---:|")
    for variant in _AGAINST:
        for connections, ratio in sorted(paired_ratios(runs, variant, "go-original").items()):
            cells = (_cell(ratio[k], 2) for k in ("per_second", "p99_ms", "cpu"))
            lines.append(f"| {variant} | {connections} | " + " | ".join(cells) + " |")
    return lines


# --- the command line ---------------------------------------------------------------------


def _process_main(argv: list[str]) -> None:
    """`serve` or `consume`: one of the floor's own processes."""
    parser = argparse.ArgumentParser(prog="benchmarks.floor " + argv[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--verdicts", required=True)
    parser.add_argument("--mode", choices=FLOOR_MODES)
    parser.add_argument("--port", type=int)
    parser.add_argument("--group")
    parser.add_argument("--dsn")
    parser.add_argument("--schema")
    parser.add_argument("--commit-every", type=float, default=0.0)
    args = parser.parse_args(argv[1:])
    if argv[0] == "serve":
        app = floor_app(args.mode, args.bootstrap, args.topic, args.verdicts)
        web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)
    else:
        asyncio.run(
            consume(
                args.bootstrap,
                args.topic,
                args.verdicts,
                args.group,
                args.dsn,
                args.schema,
                args.commit_every,
            )
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("serve", "consume"):
        _process_main(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/floor.json"))
    parser.add_argument("--reference", help="URL of another service taking the same body")
    parser.add_argument("--reference-pid", type=int, nargs="*", default=[])
    parser.add_argument("--reference-pg", help="DSN of the reference's PostgreSQL")
    args = parser.parse_args()
    other = None
    if args.reference:
        other = reference(args.reference, args.reference_pid, args.reference_pg)
        other.name = "go-original"
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = load_average()
    found = run(args.rounds, args.concurrency, args.seconds, other)
    runs = found["runs"]
    report = {
        "floor_rows": found["floor_rows"],
        "floor_201s": sum(r["requests"] - r["non2xx"] for r in runs if r["variant"] in _TRIPS),
        "started": started,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "machine": describe_machine(),
        "load_average": {"before": load_before, "after": load_average()},
        "git": git_state(),
        "runs": runs,
        "summary": summarize(runs),
        "gaps_us": {f"{o} - {f}": paired_gaps(runs, o, f) for o, f in PAIRS},
        "ratios_to_reference": {v: paired_ratios(runs, v, "go-original") for v in _AGAINST},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(tables(runs))
    rows, answered = report["floor_rows"], report["floor_201s"]
    print(f"\nrows the floor's consumers wrote: {rows:,} (its 201s measured: {answered:,})")


if __name__ == "__main__":
    main()
