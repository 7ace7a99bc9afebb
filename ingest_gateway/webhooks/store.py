"""Subscriptions and dead letters in PostgreSQL."""

from typing import Any
from uuid import UUID

from prometheus_client import Histogram
from psycopg_pool import AsyncConnectionPool

from ingest_gateway.webhooks.matching import Subscription
from shared.db import fetch_dicts

_COLUMNS = "id, url, min_severity, category, merchant, created_by, created_at"


class SubscriptionStore:
    def __init__(self, pool: AsyncConnectionPool, histogram: Histogram) -> None:
        self._pool = pool
        self._histogram = histogram

    async def create(self, row: dict[str, object]) -> dict[str, Any]:
        rows = await fetch_dicts(
            self._pool,
            self._histogram,
            "webhook_create",
            "INSERT INTO webhook_subscriptions"
            " (id, url, min_severity, category, merchant, secret, created_by)"
            " VALUES (%(id)s, %(url)s, %(min_severity)s, %(category)s, %(merchant)s,"
            " %(secret)s, %(created_by)s)"
            f" RETURNING {_COLUMNS}",  # never the secret: the gateway may not read it back
            row,
        )
        return rows[0] | {"secret": row["secret"]}

    async def live(self) -> list[dict[str, Any]]:
        return await fetch_dicts(
            self._pool,
            self._histogram,
            "webhook_list",
            f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE deleted_at IS NULL"
            " ORDER BY created_at, id",
            {},
        )

    async def delete(self, subscription_id: UUID) -> bool:
        rows = await fetch_dicts(
            self._pool,
            self._histogram,
            "webhook_delete",
            "UPDATE webhook_subscriptions SET deleted_at = now()"
            " WHERE id = %(id)s AND deleted_at IS NULL RETURNING id",
            {"id": subscription_id},
        )
        return bool(rows)

    async def live_with_secrets(self) -> list[Subscription]:
        """What the notifier delivers to."""
        rows = await fetch_dicts(
            self._pool,
            self._histogram,
            "webhook_subscriptions",
            "SELECT id, url, min_severity, category, merchant, secret"
            " FROM webhook_subscriptions WHERE deleted_at IS NULL",
            {},
        )
        return [Subscription(**row) for row in rows]


class DeadLetterStore:
    def __init__(self, pool: AsyncConnectionPool, histogram: Histogram) -> None:
        self._pool = pool
        self._histogram = histogram

    async def record(self, letter: dict[str, object], event: bytes) -> None:
        """Keep an event that could not be delivered, with why; a replay after a crash finds
        its letter already there."""
        await fetch_dicts(
            self._pool,
            self._histogram,
            "webhook_dead_letter",
            "INSERT INTO webhook_dead_letters"
            " (event_id, subscription_id, alert_id, transaction_id, attempts, last_error,"
            " last_status, event)"
            " VALUES (%(event_id)s, %(subscription_id)s, %(alert_id)s, %(transaction_id)s,"
            " %(attempts)s, %(last_error)s, %(last_status)s, %(event)s::jsonb)"
            " ON CONFLICT (event_id) DO NOTHING",
            letter | {"event": event.decode("utf-8")},
        )
