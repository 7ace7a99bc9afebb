"""Where the tests' Kafka and PostgreSQL come from.

In order: endpoints from the environment (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL); else
testcontainers when a Docker engine answers; else the local services of `ops/`, started
for the session (and stopped again if the session started them).
"""

import contextlib
import os
import subprocess
from collections.abc import Iterator
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


def _exported(env_output: str, name: str) -> str:
    for line in env_output.splitlines():
        if line.startswith(f"export {name}="):
            return line.split("=", 1)[1].strip().strip("'\"")
    raise RuntimeError(f"{name} not in ops output: {env_output!r}")


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
def postgres_endpoint() -> Iterator[str]:
    if configured := os.environ.get("DATABASE_URL"):
        yield configured
    elif docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as pg:
            yield pg.get_connection_url()
    else:
        with local_service("postgres.sh", "DATABASE_URL") as url:
            yield url
