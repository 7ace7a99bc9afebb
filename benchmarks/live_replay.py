"""Live replay: a labelled stream through the running system over HTTP, as an outside
evaluation replays one through `make up`, next to the event-time replay of the same stream.

    .venv/bin/python -m benchmarks.live_replay --seed 7 --volume 0.3

What it does: generates a labelled stream (benchmarks/streams.py) and moves its dates by
whole days so that its last day is yesterday (`--end-day today` ends it on today's date,
with the hours still to come left out: the gateway refuses future dates). It starts a
gateway, a detector and a baseline worker as processes, at their defaults but for the rate
limits, on an isolated schema and topics of the running Kafka and PostgreSQL. It posts the
history over `POST /transactions/batch`, waits until the baseline worker has recomputed over
all of it, then posts the evaluated days one transaction at a time on `POST /transactions`
(the synchronous verdict path) with `--concurrency` requests in flight, in time order. An
outside evaluator may do neither: `--history-via single` posts the history one transaction
at a time on `POST /transactions` too, `--no-wait` posts the evaluated days right after the
history. Every verdict is read back from the `verdicts` topic, and what the evaluated ones
rested on is counted (rule, scope, the share of the history their baseline had seen:
benchmarks/live_basis.py). The same figures (high+ precision, recall and
false alerts per 10k; recall at matched false-alert rates as a share of the oracle's) are
then computed for the live verdicts and for `benchmarks.family_accuracy`'s event-time replay
of the same stream with the same dates.

Why both: the event-time replay recomputes baselines as event time passes; the live system
recomputes every RECOMPUTE_INTERVAL_SECONDS of wall-clock time, or sooner once the rows
stored since reach RECOMPUTE_GROWTH_SHARE of its window (baseline_worker/cadence.py), over a
window that ends at the newest stored transaction's day (today at most; before session 15,
today). A live replay in fast time therefore scores the evaluated days against baselines a
few seconds (a fraction of an event day) behind. This benchmark measures what that costs,
which no event-time figure can show
(`benchmarks.frozen_replay` reproduces the live timing without the processes).

    .venv/bin/python -m benchmarks.live_replay --file blind.jsonl --oracle-column true_p \
        --out benchmarks/results/blind_live_s1.json

`--file` replays someone else's labelled stream instead, in `jalytics-backtest`'s format
(JSON lines or CSV: amount, category, merchant, transaction_date with a time zone, optional
currency and id; the label in `--label-column`, the oracle's true tail probability in
`--oracle-column` if the file has one): moved by whole days so that its last day is
yesterday, its last `--evaluated-days` (UTC days) evaluated, the rest posted as history, the
same procedure as above. Only the live figures are computed (the file carries no families:
rows are grouped by category; `jalytics-backtest` gives the event-time replay of a file);
without an oracle column the figures against the oracle are left out.
"""

import argparse
import asyncio
import json
import math
import re
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from aiokafka import AIOKafkaConsumer

from benchmarks.backtest import read_rows
from benchmarks.evaluate import ScoredRecord
from benchmarks.family_accuracy import ALL, config_replay, per_family
from benchmarks.generator import AnomalyKind
from benchmarks.harness import connect, free_port, isolated, persisted, running, wait_until
from benchmarks.ingest import gateway_env
from benchmarks.live_basis import StoredTimeline, stored_timings, verdict_basis
from benchmarks.streams import StreamConfig, StreamItem, generate_stream, record_of
from benchmarks.world import WorldConfig
from detector_worker.scoring import ScoringConfig
from schemas import Verdict
from schemas.transaction import TransactionFields

BATCH = 250  # within the gateway's BATCH_MAX_ITEMS (500) and MAX_BODY_BYTES (64 KiB)
_FIELDS = set(TransactionFields.model_fields)
_LAST_SUCCESS = re.compile(r"^baseline_last_success_timestamp_seconds\S* (\S+)$", re.M)
_RECOMPUTES = re.compile(r"^baseline_recompute_duration_seconds_count\S* (\S+)$", re.M)
_RECOMPUTE_SECONDS = re.compile(r"^baseline_recompute_duration_seconds_sum\S* (\S+)$", re.M)
# The figures side by side, in this order.
REPORTED = (
    "high+.precision",
    "high+.recall",
    "high+.false_alerts_per_10k",
    "medium+.false_alerts_per_10k",
    "share_of_oracle@5",
    "share_of_oracle@13",
)


def shift_days(stream: Sequence[StreamItem], last_day: date) -> list[StreamItem]:
    """The stream moved by whole days so that its last day is `last_day`; the hours and
    weekdays' order are kept (a whole-week move keeps the weekdays too when it can)."""
    end = max(item.transaction.transaction_date for item in stream).astimezone(UTC).date()
    days = (last_day - end).days
    return [
        replace(
            item,
            transaction=item.transaction.model_copy(
                update={
                    "transaction_date": item.transaction.transaction_date + timedelta(days=days)
                }
            ),
        )
        for item in stream
    ]


def file_stream(path: Path, label: str, oracle: str | None) -> tuple[list[StreamItem], int]:
    """The file's valid rows in time order as stream items, and how many rows were refused.
    A labelled row has no kind in a file: it is counted as a spike. Its category stands in
    for the family the figures are grouped by."""
    loaded = read_rows(path, label, oracle)
    items = [
        StreamItem(
            transaction=row.transaction,
            anomaly=AnomalyKind.SPIKE if row.label else None,
            family=row.transaction.category,
            p_true=row.p_true,
        )
        for row in loaded.rows
    ]
    return items, sum(loaded.rejected.values())


def _without_oracle(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The figures that do not need the oracle's p_true (NaN when the file has none)."""
    return {
        family: {k: v for k, v in flat.items() if "oracle@" not in k}
        for family, flat in table.items()
    }


def body_of(item: StreamItem) -> dict[str, Any]:
    """What a client posts: the transaction's stated fields, amounts as exact strings."""
    fields = item.transaction.model_dump(mode="json", include=_FIELDS, exclude_none=True)
    return dict(fields)


async def post_history(
    session: aiohttp.ClientSession, url: str, items: Sequence[StreamItem]
) -> dict[int, UUID]:
    """Every history item, BATCH at a time, 4 batches in flight; the gateway's id of each."""
    ids: dict[int, UUID] = {}
    batches = [items[start : start + BATCH] for start in range(0, len(items), BATCH)]
    gate = asyncio.Semaphore(4)

    async def send(batch: Sequence[StreamItem]) -> None:
        async with gate:
            body = {"transactions": [body_of(item) for item in batch]}
            async with session.post(f"{url}/transactions/batch", json=body) as response:
                reply = await response.json()
                if response.status >= 300 and response.status != 207:
                    raise RuntimeError(f"batch refused: {response.status} {reply}")
        for result in reply["results"]:
            if result["status"] != 202:
                raise RuntimeError(f"history item refused: {result}")
            ids[id(batch[result["index"]])] = UUID(result["id"])

    await asyncio.gather(*(send(batch) for batch in batches))
    return ids


async def post_one_by_one(
    session: aiohttp.ClientSession, url: str, items: Sequence[StreamItem], concurrency: int
) -> tuple[dict[int, UUID], int]:
    """Every item on the verdict path (`POST /transactions`), in time order, `concurrency`
    in flight; the gateway's id of each, and how many were answered 201 with their verdict."""
    ids: dict[int, UUID] = {}
    answered = 0
    queue: asyncio.Queue[StreamItem] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        nonlocal answered
        while not queue.empty():
            item = queue.get_nowait()
            async with session.post(f"{url}/transactions", json=body_of(item)) as response:
                reply = await response.json()
                if response.status not in (201, 202):
                    raise RuntimeError(f"refused: {response.status} {reply}")
            ids[id(item)] = UUID(reply["id"])
            answered += response.status == 201

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids, answered


async def read_verdicts(bootstrap: str, topic: str, wanted: int) -> dict[UUID, Verdict]:
    """Every verdict on the topic, once `wanted` distinct transactions have one."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    verdicts: dict[UUID, Verdict] = {}
    await consumer.start()
    try:
        deadline = time.monotonic() + 300
        while len(verdicts) < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(verdicts)} of {wanted} verdicts after 300 s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for record in records:
                    if record.value is not None:
                        verdict = Verdict.model_validate_json(record.value)
                        verdicts[verdict.transaction_id] = verdict
    finally:
        await consumer.stop()
    return verdicts


def _metric(metrics_url: str, pattern: re.Pattern[str]) -> float:
    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as response:  # noqa: S310 - localhost
            text = response.read().decode()
    except OSError:
        return 0.0
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


def last_recompute(metrics_url: str) -> float:
    """The baseline worker's last successful recompute (Unix time; 0 before the first)."""
    return _metric(metrics_url, _LAST_SUCCESS)


def recomputes(metrics_url: str) -> float:
    """How many recomputes the baseline worker has completed."""
    return _metric(metrics_url, _RECOMPUTES)


def recompute_seconds(metrics_url: str) -> float:
    """The time the baseline worker's completed recomputes took, in all."""
    return _metric(metrics_url, _RECOMPUTE_SECONDS)


def false_alerts(
    items: Sequence[StreamItem], ids: dict[int, UUID], verdicts: dict[UUID, Verdict]
) -> list[dict[str, Any]]:
    """The normal transactions the live system judged high or critical, with the verdict
    that says why: where to look when live and replay differ."""
    found = []
    for item in items:
        verdict = verdicts[ids[id(item)]]
        if not item.is_anomaly and verdict.severity in ("high", "critical"):
            txn = item.transaction
            found.append(
                {
                    "family": item.family,
                    "size": str(item.size),
                    "merchant": txn.merchant,
                    "amount": str(txn.amount),
                    "at": txn.transaction_date.isoformat(),
                    "p_true": item.p_true,
                    "verdict": verdict.model_dump(mode="json", exclude={"transaction_id"}),
                }
            )
    return found


def anomaly_verdicts(
    items: Sequence[StreamItem], ids: dict[int, UUID], verdicts: dict[UUID, Verdict]
) -> list[dict[str, Any]]:
    """Every labelled anomaly with its live verdict (caught or not): to compare, by the
    posted id, with another system's verdicts on the same stream."""
    return [
        {
            "id": str(item.transaction.id),
            "merchant": item.transaction.merchant,
            "category": item.transaction.category,
            "amount": str(item.transaction.amount),
            "at": item.transaction.transaction_date.isoformat(),
            "p_true": item.p_true,
            "verdict": verdicts[ids[id(item)]].model_dump(mode="json", exclude={"transaction_id"}),
        }
        for item in items
        if item.is_anomaly
    ]


def false_alerts_by_size(records: Sequence[ScoredRecord]) -> dict[str, int]:
    """Normal transactions judged medium or above, by their merchant's size (a late
    merchant appears in the evaluated days)."""
    return dict(Counter(r.segment for r in records if not r.is_anomaly and r.severity))


def live_records(
    items: Sequence[StreamItem], ids: dict[int, UUID], verdicts: dict[UUID, Verdict]
) -> list[ScoredRecord]:
    records = []
    for item in items:
        verdict = verdicts[ids[id(item)]]
        score = verdict.z_score
        if score is None:
            score = math.inf if verdict.anomaly else -math.inf
        records.append(record_of(item, verdict.severity, score))
    return records


@dataclass(frozen=True)
class Procedure:
    """How the stream is posted: the history over `POST /transactions/batch` ("batch") or
    one transaction at a time over `POST /transactions` ("single"); `wait`: whether the
    evaluated days wait until the baseline worker has recomputed over the stored history
    (an outside evaluator may post them back to back)."""

    history_via: str = "batch"
    wait: bool = True
    concurrency: int = 32

    def label(self) -> str:
        return f"history {self.history_via}, {'wait' if self.wait else 'no wait'}"


@dataclass(frozen=True)
class Live:
    records: list[ScoredRecord]
    timings: dict[str, float]
    false_alerts: list[dict[str, Any]]
    basis: dict[str, Any]
    anomalies: list[dict[str, Any]]


def watch_stored(
    env: dict[str, str], scored_from: datetime, timeline: StoredTimeline, stop: threading.Event
) -> None:
    """Sample how many history rows are stored, every 0.25 s until `stop` is set."""
    query = "SELECT count(*) FROM transactions WHERE transaction_date < %s"
    with connect(env) as conn:
        while not stop.is_set():
            row = conn.execute(query, (scored_from,)).fetchone()
            timeline.add(time.time(), int(row[0]) if row else 0)
            stop.wait(0.25)


def run_live(stream: Sequence[StreamItem], scored_from: datetime, procedure: Procedure) -> Live:
    """The stream through a live gateway, detector and baseline worker."""
    history = [i for i in stream if i.transaction.transaction_date < scored_from]
    evaluated = [i for i in stream if i.transaction.transaction_date >= scored_from]
    timings: dict[str, float] = {}
    timeline, stop_watching = StoredTimeline(), threading.Event()
    concurrency = procedure.concurrency
    with isolated(6) as env, ExitStack() as stack:
        key, port, baseline_port, detector_port = (
            "live-replay-key",
            free_port(),
            free_port(),
            free_port(),
        )
        baseline = stack.enter_context(
            running("baseline_worker", env | {"METRICS_PORT": str(baseline_port)})
        )
        detector = stack.enter_context(
            running("detector_worker", env | {"METRICS_PORT": str(detector_port)})
        )
        detector.wait_healthy(f"http://127.0.0.1:{detector_port}/health")
        gateway = stack.enter_context(
            running("ingest_gateway", gateway_env(env, port, key, verdict_wait=5.0))
        )
        url = f"http://127.0.0.1:{port}"
        gateway.wait_healthy(f"{url}/ready")
        metrics_url = f"http://127.0.0.1:{baseline_port}/metrics"
        watcher = threading.Thread(
            target=watch_stored, args=(env, scored_from, timeline, stop_watching), daemon=True
        )

        async def post() -> tuple[dict[int, UUID], dict[int, UUID], int]:
            headers = {"Authorization": f"Bearer {key}"}
            connector = aiohttp.TCPConnector(limit=concurrency + 8)
            async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
                started = time.monotonic()
                if procedure.history_via == "single":
                    history_ids, answered = await post_one_by_one(
                        session, url, history, concurrency
                    )
                    timings["history_answered_201_share"] = answered / max(1, len(history))
                else:
                    history_ids = await post_history(session, url, history)
                timings["history_post_seconds"] = time.monotonic() - started
                if procedure.wait:
                    await asyncio.to_thread(_wait_for_baselines, env, len(history), metrics_url)
                    timings["baselines_ready_seconds"] = time.monotonic() - started
                baseline.assert_running()
                started_at, done_before = time.time(), recomputes(metrics_url)
                took_before = recompute_seconds(metrics_url)
                timings["evaluated_started_unix"] = started_at
                eval_ids, answered = await post_one_by_one(session, url, evaluated, concurrency)
                timings["evaluated_post_seconds"] = time.time() - started_at
                # Baselines that saw part of the evaluated week (baseline_worker/cadence.py).
                done = recomputes(metrics_url) - done_before
                timings["recomputes_while_evaluated"] = done
                took = recompute_seconds(metrics_url) - took_before
                timings["recompute_seconds_mean_while_evaluated"] = took / max(1.0, done)
                return history_ids, eval_ids, answered

        watcher.start()
        try:
            _, eval_ids, answered = asyncio.run(post())
            timings["answered_201_share"] = answered / max(1, len(evaluated))
            verdicts = asyncio.run(
                read_verdicts(env["KAFKA_BOOTSTRAP_SERVERS"], env["TOPIC_VERDICTS"], len(stream))
            )
        finally:
            stop_watching.set()
            watcher.join()
        timings |= stored_timings(timeline, len(history), timings["evaluated_started_unix"])
        evaluated_verdicts = [verdicts[eval_ids[id(item)]] for item in evaluated]
        return Live(
            live_records(evaluated, eval_ids, verdicts),
            timings,
            false_alerts(evaluated, eval_ids, verdicts),
            verdict_basis(evaluated_verdicts, timeline, len(history)),
            anomaly_verdicts(evaluated, eval_ids, verdicts),
        )


def _wait_for_baselines(env: dict[str, str], history: int, metrics_url: str) -> None:
    """Until every history row is stored and a recompute has started after that."""
    wait_until(lambda: persisted(env) >= history, 600, "the history to be stored")
    # The first publish after that may come from a recompute that began before: wait for two.
    stored_at = time.time()
    wait_until(lambda: last_recompute(metrics_url) > stored_at, 180, "a recompute")
    published = last_recompute(metrics_url)
    wait_until(lambda: last_recompute(metrics_url) > published, 180, "a recompute over it")
    time.sleep(2.0)  # the detector reads the new baselines off their topic


def replayed_records(stream: Sequence[StreamItem], scored_from: datetime) -> list[ScoredRecord]:
    """The same stream, same dates, through the event-time replay at production's config."""
    replay = config_replay(ScoringConfig())
    return [record_of(item, sev, score) for item, sev, score in replay(stream, scored_from)]


# The figures of a file's replay, in this order (the oracle's only when the file has one).
FILE_REPORTED = (
    "high+.precision",
    "high+.recall",
    "high+.false_alerts_per_10k",
    "medium+.false_alerts_per_10k",
    *(f"{name}@{rate}" for rate in (2, 5, 13) for name in ("recall", "oracle")),
)


def markdown(
    tables: dict[str, dict[str, dict[str, float]]], reported: Sequence[str] = REPORTED
) -> str:
    """One row per family: live / replay, or live alone when there is no replay."""
    live, replayed = tables["live"], tables.get("replay")
    suffix = " live / replay" if replayed is not None else ""
    lines = [
        "| family | " + " | ".join(f"{name}{suffix}" for name in reported) + " |",
        "|---|" + "---:|" * len(reported),
    ]
    for family in sorted(live, key=lambda f: (f == ALL, f)):
        cells = [f"{live[family].get(name, math.nan):.2f}" for name in reported]
        if replayed is not None:
            cells = [
                f"{cell} / {replayed[family].get(name, math.nan):.2f}"
                for cell, name in zip(cells, reported, strict=True)
            ]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--volume", type=float, default=1.0, help="x ~3,000 transactions a day")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--history-via",
        choices=("batch", "single"),
        default="batch",
        help="the history over POST /transactions/batch or one at a time on POST /transactions",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="post the evaluated days right after the history, without waiting for baselines",
    )
    parser.add_argument("--end-day", choices=("yesterday", "today"), default="yesterday")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/live_replay.json"))
    parser.add_argument("--file", type=Path, help="replay this labelled file (jsonl or csv)")
    parser.add_argument("--label-column", default="is_fraud", help="with --file")
    parser.add_argument("--oracle-column", help="with --file: the true tail probability")
    parser.add_argument("--evaluated-days", type=int, default=7, help="with --file")
    return parser.parse_args(argv)


def generated(args: argparse.Namespace, now: datetime) -> tuple[list[StreamItem], datetime]:
    """The seed's stream moved to end on `--end-day`, and where its evaluated days begin."""
    config = StreamConfig(world=WorldConfig(volume=args.volume))
    last_day = now.date() - timedelta(days=1 if args.end_day == "yesterday" else 0)
    stream = shift_days(generate_stream(args.seed, config), last_day)
    offset = last_day - (config.world.start + timedelta(days=config.world.days - 1))
    return stream, config.scored_from() + offset


def from_file(args: argparse.Namespace, now: datetime) -> tuple[list[StreamItem], datetime]:
    """The file's rows moved to end yesterday (UTC), and where its last days begin."""
    items, refused = file_stream(args.file, args.label_column, args.oracle_column)
    print(f"{args.file}: {len(items)} rows, {refused} refused", file=sys.stderr)
    last_day = now.date() - timedelta(days=1)
    first = last_day - timedelta(days=args.evaluated_days - 1)
    return shift_days(items, last_day), datetime(first.year, first.month, first.day, tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    now = datetime.now(UTC)
    stream, scored_from = (from_file if args.file else generated)(args, now)
    # Nothing later than now: the gateway refuses dates in the future.
    stream = [item for item in stream if item.transaction.transaction_date <= now]
    print(f"{len(stream)} transactions, evaluated from {scored_from:%Y-%m-%d}", file=sys.stderr)

    procedure = Procedure(args.history_via, not args.no_wait, args.concurrency)
    live = run_live(stream, scored_from, procedure)
    tables = {"live": per_family(live.records)}
    by_size = {"live": false_alerts_by_size(live.records)}
    if args.file is None:
        replayed = replayed_records(stream, scored_from)
        tables["replay"] = per_family(replayed)
        by_size["replay"] = false_alerts_by_size(replayed)
    elif args.oracle_column is None:
        tables["live"] = _without_oracle(tables["live"])
    source = {"file": str(args.file)} if args.file else {"seed": args.seed, "volume": args.volume}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                **source,
                "procedure": asdict(procedure),
                "timings": live.timings,
                "verdict_basis": live.basis,
                **tables,
                "live_false_alerts": live.false_alerts,
                "live_anomalies": live.anomalies,
                "medium+_false_alerts_by_size": by_size,
            }
        )
    )
    print(procedure.label())
    print(json.dumps(live.timings))
    print(json.dumps(live.basis))
    print(markdown(tables, FILE_REPORTED if args.file else REPORTED))


if __name__ == "__main__":
    main()
