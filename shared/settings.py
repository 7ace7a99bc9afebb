"""Settings common to every worker, read from the environment (and `.env`) and validated once."""

import sys
from typing import Annotated, Literal, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


# Any case in the environment (LOG_LEVEL=INFO); `warn` is an alias of `warning`.
LogLevel = Annotated[
    Literal["debug", "info", "warning", "warn", "error", "critical"], BeforeValidator(_lower)
]


def _postgres_url(value: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("must start with postgresql:// or postgres://")
    try:
        conninfo_to_dict(value)
    except psycopg.ProgrammingError:
        # libpq's message quotes the whole URL, password included.
        raise ValueError("is not a valid connection URL (the value is not shown)") from None
    return value


# A URL that holds a password: declare its field with repr=False, and a malformed value is
# never echoed back (a validation message shows no input anyway).
PostgresUrl = Annotated[str, AfterValidator(_postgres_url)]


class CommonSettings(BaseSettings):
    """What every worker needs: where Kafka and PostgreSQL are, topic names, logging."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: PostgresUrl = Field(description="postgresql://user:pw@host:port/db", repr=False)
    # A schema to work in (tests give each run its own); migrations create it.
    database_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Apply the migrations at start-up (needs the schema owner's login) instead of only
    # checking that they were applied.
    migrate_on_start: bool = False
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    log_level: LogLevel = "info"

    topic_transactions: str = "transactions"
    topic_baselines: str = "baselines"
    topic_alerts: str = "alerts"
    topic_verdicts: str = "verdicts"
    topic_dlq: str = "transactions.dlq"
    topic_partitions: int = Field(default=3, ge=1, le=1024)
    topic_replication_factor: int = Field(default=1, ge=1, le=5)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad variable, named as the user spells it in the environment."""
    lines = []
    for problem in error.errors():
        variable = "_".join(str(part) for part in problem["loc"]).upper() or "(settings)"
        lines.append(f"  {variable}: {problem['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Build the settings or stop the process with a message naming each bad variable."""
    try:
        return cls()
    except ValidationError as error:
        print(describe_validation_error(error), file=sys.stderr)
        raise SystemExit(2) from None
