"""Fixtures: a real broker and database for the session, own topics and schema per test."""

import hashlib
import secrets
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import pytest
from aiokafka.errors import KafkaError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pydantic_settings import BaseSettings

from baseline_worker.settings import BaselineSettings
from benchmarks.support import delete_topics, settings_from
from detector_worker.settings import DetectorSettings
from ingest_gateway.settings import GatewaySettings
from ingest_gateway.webhooks.settings import NotifierSettings
from shared.kafka import ensure_topics, project_topics
from shared.migrations import apply_migrations
from shared.provision import WORKER_ROLES, ensure_login
from shared.settings import CommonSettings
from tests.infra import WORKERS, Postgres, kafka_endpoint, postgres_endpoint

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

# The API key every test client presents (an admin's: every scope); the gateway is configured
# with its hash only.
API_KEY = "test-key-0123456789"
API_KEY_SHA256 = hashlib.sha256(API_KEY.encode()).hexdigest()
AUTH_HEADERS = {"Authorization": f"Bearer {API_KEY}"}
# One key per narrower scope (auth.py), for the tests of what each may do.
SCOPED_KEYS = {scope: f"test-{scope}-key-0123456789" for scope in ("ingest", "read", "analyst")}
SCOPED_HEADERS = {scope: {"Authorization": f"Bearer {key}"} for scope, key in SCOPED_KEYS.items()}
# A key configured without scopes: what every key could do before scopes (ingest and read).
UNSCOPED_KEY = "test-unscoped-key-0123456789"


def _configured_keys() -> str:
    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    scoped = [f"tests-{scope}:{digest(key)}:{scope}" for scope, key in SCOPED_KEYS.items()]
    return ",".join([f"tests:{API_KEY_SHA256}:admin", *scoped, f"legacy:{digest(UNSCOPED_KEY)}"])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with kafka_endpoint() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with postgres_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def database_url(postgres: Postgres) -> str:
    """The schema owner's login: migrations, test data, assertions."""
    return postgres.url


def with_login(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"{user}:{password}@{parts.netloc.rpartition('@')[2]}").geturl()


@pytest.fixture(scope="session")
def worker_database_urls(postgres: Postgres) -> Iterator[dict[str, str]]:
    """Worker -> the login it runs with: the provisioned ones, else logins made for this
    session (the owner then needs CREATEROLE, as a testcontainers superuser has)."""
    if postgres.worker_urls is not None:
        yield postgres.worker_urls
        return
    suffix = uuid.uuid4().hex[:8]
    urls = {
        worker: with_login(postgres.url, f"jalytics_test_{worker}_{suffix}", secrets.token_hex(16))
        for worker in WORKERS
    }
    for worker, url in urls.items():
        ensure_login(postgres.url, url, WORKER_ROLES[worker])
    yield urls
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        for url in urls.values():
            user = sql.Identifier(str(conninfo_to_dict(url)["user"]))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(user))


# Which login a settings class runs with: the worker's own, so a missing grant fails a test.
_WORKER_OF: dict[type[BaseSettings], str] = {
    GatewaySettings: "gateway",
    DetectorSettings: "detector",
    BaselineSettings: "baseline",
    NotifierSettings: "notifier",
}


@dataclass(frozen=True)
class Isolated:
    """The environment of one test: its own schema and topics on the shared services.

    `env` logs in as the schema owner; `worker_env(worker)` and `settings(cls)` as that
    worker's own, least-privileged role."""

    env: dict[str, str]
    worker_urls: dict[str, str] = field(repr=False)  # passwords: not in test reports

    def worker_env(self, worker: str) -> dict[str, str]:
        return self.env | {"DATABASE_URL": self.worker_urls[worker]}

    def settings(self, cls: type[SettingsT], **overrides: Any) -> SettingsT:
        env = next(
            (self.worker_env(w) for c, w in _WORKER_OF.items() if issubclass(cls, c)), self.env
        )
        return settings_from(cls, env, **overrides)

    @property
    def schema(self) -> str:
        return self.env["DATABASE_SCHEMA"]

    def topic(self, name: str) -> str:
        return self.env[f"TOPIC_{name.upper()}"]


def isolated_env(kafka_bootstrap: str, database_url: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "DATABASE_SCHEMA": f"t_{suffix}",
        "TOPIC_TRANSACTIONS": f"transactions-{suffix}",
        "TOPIC_BASELINES": f"baselines-{suffix}",
        "TOPIC_ALERTS": f"alerts-{suffix}",
        "TOPIC_VERDICTS": f"verdicts-{suffix}",
        "TOPIC_DLQ": f"transactions.dlq-{suffix}",
        "TOPIC_PARTITIONS": "3",
        # The notifier's group, its own per test: groups are shared across the broker.
        "WEBHOOK_CONSUMER_GROUP": f"notifier-{suffix}",
        "LOG_LEVEL": "info",
        "API_KEYS_SHA256": _configured_keys(),
    }


@pytest.fixture
async def isolated(
    kafka_bootstrap: str, database_url: str, worker_database_urls: dict[str, str]
) -> AsyncIterator[Isolated]:
    """A fresh schema (migrated) and fresh topics; both are dropped afterwards."""
    box = Isolated(isolated_env(kafka_bootstrap, database_url), worker_database_urls)
    common = box.settings(CommonSettings)
    apply_migrations(database_url, box.schema)
    await ensure_topics(kafka_bootstrap, project_topics(common))
    yield box
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(box.schema)))
    with suppress(KafkaError, OSError):  # a leftover topic costs disk only, never a result
        await delete_topics(kafka_bootstrap, [spec.name for spec in project_topics(common)])


@pytest.fixture
def db(isolated: Isolated, database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection into the test's schema, for assertions."""
    with psycopg.connect(
        database_url, autocommit=True, options=f"-c search_path={isolated.schema}"
    ) as conn:
        yield conn
