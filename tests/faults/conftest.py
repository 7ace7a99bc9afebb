"""Fixtures of the fault suite: services of the test's own, so that a test can stop them."""

from collections.abc import Iterator
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


@pytest.fixture
def private_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateKafka]:
    with PrivateKafka(tmp_path_factory.mktemp("kafka-state")) as kafka:
        yield kafka


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
