"""Fixtures of the fault suite: services of the test's own, so that a test can stop them."""

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults.cluster import KafkaCluster
from tests.processes import PrivateService, free_port


class PrivateKafka(PrivateService):
    def __init__(self, state_dir: Path) -> None:
        self.port = free_port()
        ports = {"KAFKA_PORT": str(self.port), "KAFKA_CONTROLLER_PORT": str(free_port())}
        super().__init__("kafka.sh", state_dir, ports)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.state_dir = state_dir

    def broker_pid(self) -> int:
        pid = int((self.state_dir / "kafka" / "kafka.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"kafka.Kafka" in cmdline, f"pid {pid} is not the test's broker"
        return pid

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The broker's JVM stopped (SIGSTOP) for the block, resumed (SIGCONT) after it, also
        when the block failed: its connections stay open and no byte is answered, as with a
        GC pause, a frozen VM or a partition."""
        pid = self.broker_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def private_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateKafka]:
    with PrivateKafka(tmp_path_factory.mktemp("kafka-state")) as kafka:
        yield kafka


async def sigterm_and_time(process: "subprocess.Popen[bytes]") -> tuple[int | None, float]:
    """SIGTERM to a worker: its exit code (None if it was still there after a minute) and
    how long it took to exit."""
    asked = time.monotonic()
    process.terminate()
    try:
        code: int | None = await asyncio.to_thread(process.wait, 60)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - asked


class PrivatePostgres(PrivateService):
    def __init__(self, state_dir: Path) -> None:
        super().__init__("postgres.sh", state_dir, {"JALYTICS_PG_PORT": str(free_port())})

    def url(self) -> str:
        line = next(x for x in self.run("env").splitlines() if "DATABASE_URL=" in x)
        return line.split("=", 1)[1].strip("'\"")


@pytest.fixture
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    with PrivatePostgres(tmp_path_factory.mktemp("pg-state")) as postgres:
        yield postgres


@pytest.fixture
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    with KafkaCluster(tmp_path_factory.mktemp("kafka-cluster")) as cluster:
        yield cluster
