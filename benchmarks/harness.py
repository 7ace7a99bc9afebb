"""What every system benchmark shares: an isolated environment on the running Kafka and
PostgreSQL (own schema, topics and consumer group), workers started as real processes
(`python -m <worker>`), and readings of those processes from /proc.

Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (`eval "$(bash ops/postgres.sh start)"`,
`eval "$(bash ops/kafka.sh start)"`).
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.support import delete_topics, settings_from, stop_process
from shared.kafka import TopicSpec, ensure_topics, project_topics, topic_partitions
from shared.migrations import apply_migrations
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / ".run" / "bench-logs"
_TOPIC_VARIABLES = ("TOPIC_TRANSACTIONS", "TOPIC_BASELINES", "TOPIC_ALERTS", "TOPIC_VERDICTS")


def round_env(partitions: int) -> dict[str, str]:
    """The environment of one round: the shared services, everything else its own."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "DATABASE_SCHEMA": f"bench_{suffix}",
        "TOPIC_TRANSACTIONS": f"bench-transactions-{suffix}",
        "TOPIC_BASELINES": f"bench-baselines-{suffix}",
        "TOPIC_ALERTS": f"bench-alerts-{suffix}",
        "TOPIC_VERDICTS": f"bench-verdicts-{suffix}",
        "TOPIC_DLQ": f"bench-dlq-{suffix}",
        "TOPIC_PARTITIONS": str(partitions),
        "CONSUMER_GROUP": f"bench-detector-{suffix}",
        "LOG_LEVEL": "warning",
    }


def connect(env: dict[str, str]) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection into the round's schema."""
    return psycopg.connect(
        env["DATABASE_URL"], autocommit=True, options=f"-c search_path={env['DATABASE_SCHEMA']}"
    )


def persisted(env: dict[str, str]) -> int:
    with connect(env) as conn:
        row = conn.execute("SELECT count(*) FROM transactions").fetchone()
        return int(row[0]) if row else 0


def drop_schema(env: dict[str, str]) -> None:
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(env["DATABASE_SCHEMA"])
            )
        )


@contextmanager
def isolated(partitions: int, extra: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
    """A migrated schema and created topics for one round; both removed afterwards."""
    env = round_env(partitions) | (extra or {})
    apply_migrations(env["DATABASE_URL"], env["DATABASE_SCHEMA"])
    settings = settings_from(CommonSettings, env)
    asyncio.run(_create_topics(env["KAFKA_BOOTSTRAP_SERVERS"], project_topics(settings)))
    try:
        yield env
    finally:
        drop_schema(env)
        with suppress(Exception):  # leftover topics cost disk only, never a wrong number
            names = [env[name] for name in (*_TOPIC_VARIABLES, "TOPIC_DLQ")]
            asyncio.run(delete_topics(env["KAFKA_BOOTSTRAP_SERVERS"], names))


async def _create_topics(bootstrap: str, topics: list[TopicSpec]) -> None:
    """Create them and wait until each has its leaders (a producer would otherwise retry)."""
    await ensure_topics(bootstrap, topics)
    for spec in topics:
        await topic_partitions(bootstrap, spec.name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - localhost
        return json.loads(response.read())


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Worker:
    """One worker as a user starts it: `python -m <module>`, configured by its environment."""

    def __init__(self, module: str, env: dict[str, str], *args: str, cwd: Path = ROOT) -> None:
        """`cwd`: the tree whose code `python -m` imports (another commit's, exported)."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.module = module
        self.log_path = LOG_DIR / f"{module}-{uuid.uuid4().hex[:8]}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=cwd,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def assert_running(self) -> None:
        if (code := self.process.poll()) is not None:
            raise RuntimeError(f"{self.module} exited with {code}; see {self.log_path}")

    def wait_healthy(self, url: str, timeout: float = 90.0) -> None:
        """Until `url` answers 200 with status ok; fails at once if the process died."""

        def healthy() -> bool:
            self.assert_running()
            try:
                return bool(get_json(url).get("status") == "ok")
            except (OSError, ValueError):
                return False

        wait_until(healthy, timeout, f"{self.module} at {url}")

    def peak_rss_mb(self) -> float:
        """The peak resident set size so far (VmHWM), in MiB."""
        return _proc_status_kib(self.process.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return _proc_status_kib(self.process.pid, "VmRSS") / 1024

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.process, timeout)


@contextmanager
def running(module: str, env: dict[str, str], *args: str) -> Iterator[Worker]:
    worker = Worker(module, env, *args)
    try:
        yield worker
    finally:
        worker.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")
