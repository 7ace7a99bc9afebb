"""Where the tests' Kafka and PostgreSQL come from.

In order: endpoints from the environment (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL); else
testcontainers when a Docker engine answers; else the local services of `ops/`, started
for the session (and stopped again if the session started them).

DATABASE_URL is the schema owner's login (it applies the migrations). The workers' own
logins come from GATEWAY_/DETECTOR_/BASELINE_/NOTIFIER_DATABASE_URL, or from `ops/postgres.sh env`
for its cluster; failing both, the session makes its own (see conftest.py).
"""

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def docker_engine_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


def _ops(script: str, *args: str) -> str:
    result = subprocess.run(
        ["bash", str(ROOT / "ops" / script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"ops/{script} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def _exports(env_output: str) -> dict[str, str]:
    return {
        name.removeprefix("export "): value.strip().strip("'\"")
        for name, _, value in (
            line.partition("=") for line in env_output.splitlines() if line.startswith("export ")
        )
    }


def _exported(env_output: str, name: str) -> str:
    if name in (exports := _exports(env_output)):
        return exports[name]
    raise RuntimeError(f"{name} not in ops output: {env_output!r}")


WORKERS = ("gateway", "detector", "baseline", "notifier")


@dataclass(frozen=True)
class Postgres:
    url: str  # the owner's login
    worker_urls: dict[str, str] | None  # worker -> its own login, when provisioned


def worker_urls_in(env: Mapping[str, str]) -> dict[str, str] | None:
    names = {worker: f"{worker.upper()}_DATABASE_URL" for worker in WORKERS}
    if not all(env.get(name) for name in names.values()):
        return None
    return {worker: env[name] for worker, name in names.items()}


def local_worker_urls(url: str) -> dict[str, str] | None:
    """The workers' logins of the ops/postgres.sh cluster, if `url` is that cluster's owner."""
    result = subprocess.run(
        ["bash", str(ROOT / "ops" / "postgres.sh"), "env"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    exports = _exports(result.stdout) if result.returncode == 0 else {}
    return worker_urls_in(exports) if exports.get("DATABASE_URL") == url else None


@contextlib.contextmanager
def local_service(script: str, variable: str) -> Iterator[str]:
    was_running = (
        subprocess.run(
            ["bash", str(ROOT / "ops" / script), "status"], capture_output=True, check=False
        ).returncode
        == 0
    )
    _ops(script, "start")
    try:
        yield _exported(_ops(script, "env"), variable)
    finally:
        if not was_running and os.environ.get("JALYTICS_KEEP_SERVICES") != "1":
            _ops(script, "stop")


@contextlib.contextmanager
def kafka_endpoint() -> Iterator[str]:
    if configured := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield configured
    elif docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.9.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        with local_service("kafka.sh", "KAFKA_BOOTSTRAP_SERVERS") as bootstrap:
            yield bootstrap


@contextlib.contextmanager
def postgres_endpoint() -> Iterator[Postgres]:
    if configured := os.environ.get("DATABASE_URL"):
        yield Postgres(configured, worker_urls_in(os.environ) or local_worker_urls(configured))
    elif docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as pg:
            yield Postgres(pg.get_connection_url(), None)
    else:
        with local_service("postgres.sh", "DATABASE_URL") as url:
            yield Postgres(url, local_worker_urls(url))
