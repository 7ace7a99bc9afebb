"""For the webhook tests: alerts to publish, a real HTTP receiver on loopback, subscriptions."""

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from aiohttp import web
from aiokafka import AIOKafkaProducer

from schemas import Alert, Severity, encode_model
from tests.unit.test_detector_observability import baseline

SECRET = "whsec-test-0123456789abcdef"


def make_alert(
    *,
    severity: Severity = "critical",
    category: str = "travel",
    merchant: str = "Airline",
    transaction_id: uuid.UUID | None = None,
    suppressed: bool = False,
) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        id=uuid.uuid4(),
        transaction_id=transaction_id or uuid.uuid4(),
        severity=severity,
        alert_message="Amount exceeds 5σ baseline",
        rule="zscore",
        z_score=9.5,
        baseline=baseline(category, now),
        amount=Decimal("145.00"),
        currency="USD",
        category=category,
        merchant=merchant,
        transaction_date=now,
        created_at=now,
        suppressed=suppressed,
        suppression_id=uuid.uuid4() if suppressed else None,
    )


async def publish_alerts(bootstrap: str, topic: str, alerts: list[Alert]) -> None:
    """As the detector does: key = transaction id, so one transaction's alerts share a
    partition and keep their order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for alert in alerts:
            await producer.send_and_wait(
                topic, encode_model(alert), key=str(alert.transaction_id).encode()
            )
    finally:
        await producer.stop()


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The README's receiver recipe, verbatim in spirit: HMAC-SHA256 of "<t>.<body>"."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    signed = parts["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) <= tolerance
    return fresh and hmac.compare_digest(expected, parts["v1"])


@dataclass
class Received:
    event_id: str
    transaction_id: str
    alert_id: str
    body: bytes
    signature: str
    at: float


# status to answer for the n-th request (0-based), and optional headers.
Behaviour = Callable[[int], tuple[int, dict[str, str]]]


def always(status: int) -> Behaviour:
    return lambda _n: (status, {})


@dataclass
class Receiver:
    """A real aiohttp server on 127.0.0.1 that records every request it answers 2xx to
    (`delivered`) and every request at all (`requests`)."""

    behaviour: Behaviour = field(default=always(200))
    delay: float = 0.0
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    delivered: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = json.loads(body)
        received = Received(
            payload["event_id"],
            payload["alert"]["transaction_id"],
            payload["alert"]["id"],
            body,
            request.headers.get("Jalytics-Signature", ""),
            time.monotonic(),
        )
        status, headers = self.behaviour(len(self.requests))
        self.requests.append(received)
        if self.delay:
            await asyncio.sleep(self.delay)
        if 200 <= status < 300:
            self.delivered.append(received)
        return web.Response(status=status, headers=headers)

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def unique(self) -> set[str]:
        return {r.event_id for r in self.delivered}

    def duplicates(self) -> int:
        return len(self.delivered) - len(self.unique())


def subscribe(
    db: psycopg.Connection[Any],
    url: str,
    *,
    min_severity: str = "medium",
    category: str | None = None,
    merchant: str | None = None,
    secret: str = SECRET,
) -> uuid.UUID:
    """A subscription as the gateway stores it (the API's own checks are tested apart)."""
    subscription_id = uuid.uuid4()
    db.execute(
        "INSERT INTO webhook_subscriptions (id, url, min_severity, category, merchant, secret,"
        " created_by) VALUES (%s, %s, %s, %s, %s, %s, 'tests')",
        (subscription_id, url, min_severity, category, merchant, secret),
    )
    return subscription_id


def dead_letters(db: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT event_id, subscription_id, alert_id, attempts, last_error, last_status"
        " FROM webhook_dead_letters ORDER BY created_at"
    )
    names = [column.name for column in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


async def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
