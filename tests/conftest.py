"""Fixtures: a real broker and database for the session, own topics and schema per test."""

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql
from pydantic_settings import BaseSettings

from shared.kafka import ensure_topics, project_topics
from shared.migrations import apply_migrations
from shared.settings import CommonSettings, settings_from
from tests.infra import kafka_endpoint, postgres_endpoint

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

# The API key every test client presents; the gateway is configured with its hash only.
API_KEY = "test-key-0123456789"
API_KEY_SHA256 = hashlib.sha256(API_KEY.encode()).hexdigest()
AUTH_HEADERS = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with kafka_endpoint() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with postgres_endpoint() as url:
        yield url


@dataclass(frozen=True)
class Isolated:
    """The environment of one test: its own schema and topics on the shared services."""

    env: dict[str, str]

    def settings(self, cls: type[SettingsT], **overrides: Any) -> SettingsT:
        return settings_from(cls, self.env, **overrides)

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
        "LOG_LEVEL": "info",
        "API_KEYS_SHA256": f"tests:{API_KEY_SHA256}",
    }


@pytest.fixture
async def isolated(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Isolated]:
    """A fresh schema (migrated) and fresh topics; the schema is dropped afterwards."""
    box = Isolated(isolated_env(kafka_bootstrap, database_url))
    common = box.settings(CommonSettings)
    apply_migrations(database_url, box.schema)
    await ensure_topics(kafka_bootstrap, project_topics(common))
    yield box
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(box.schema)))


@pytest.fixture
def db(isolated: Isolated, database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection into the test's schema, for assertions."""
    with psycopg.connect(
        database_url, autocommit=True, options=f"-c search_path={isolated.schema}"
    ) as conn:
        yield conn
