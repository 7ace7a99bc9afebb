"""The notifier as a real process: SIGKILL mid-send loses nothing, and a receiver down for the
issue's full 30 s then up gets every alert. Real Kafka, PostgreSQL and HTTP receiver."""

import asyncio
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest_gateway.webhooks.matching import event_id
from tests.conftest import Isolated
from tests.processes import Worker, free_port
from tests.webhook_helpers import (
    Receiver,
    dead_letters,
    eventually,
    make_alert,
    publish_alerts,
    subscribe,
)

pytestmark = pytest.mark.faults


def start_notifier(
    isolated: Isolated, log: Path, group: str, **settings: str
) -> tuple[Worker, str]:
    port = free_port()
    env = isolated.worker_env("notifier") | {
        "METRICS_PORT": str(port),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_START_FROM": "earliest",
        "WEBHOOK_CONSUMER_GROUP": group,
        **settings,
    }
    return Worker("ingest_gateway.webhooks", env, log), f"http://127.0.0.1:{port}"


async def healthy(worker: Worker, base: str) -> None:
    await asyncio.to_thread(worker.wait_healthy, f"{base}/health", 60)


def metrics_text(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=2) as response:  # noqa: S310
        return str(response.read().decode())


def report(produced: int, receiver: Receiver, want: set[str], db: psycopg.Connection[Any]) -> str:
    lost = len(want - receiver.unique())
    return (
        "\n| alerts produced | delivered | duplicates received | lost | dead-lettered |"
        f"\n| {produced} | {len(receiver.unique())} | {receiver.duplicates()} | {lost} "
        f"| {len(dead_letters(db))} |"
    )


async def test_a_notifier_killed_mid_send_loses_nothing(
    isolated: Isolated, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    receiver = await Receiver(delay=0.3).start()  # slow: a request is always in flight
    subscription = subscribe(db, receiver.url)
    transactions = [uuid.uuid4() for _ in range(10)]
    alerts = [make_alert(transaction_id=t) for _ in range(4) for t in transactions]
    want = {str(event_id(alert.id, subscription)) for alert in alerts}
    group = f"notifier-{uuid.uuid4().hex[:8]}"
    try:
        await publish_alerts(
            isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("alerts"), alerts
        )
        first, base = start_notifier(isolated, tmp_path / "notifier-1.log", group)
        try:
            await healthy(first, base)
            await eventually(lambda: len(receiver.delivered) >= 8, 60, "some deliveries")
            await eventually(
                lambda: len(receiver.requests) > len(receiver.delivered), 10, "a send in flight"
            )
            first.process.kill()  # SIGKILL: no drain, no last commit
            first.process.wait(10)
        finally:
            first.stop()
        killed_at = len(receiver.delivered)
        second, base = start_notifier(isolated, tmp_path / "notifier-2.log", group)
        try:
            await healthy(second, base)
            await eventually(lambda: receiver.unique() == want, 90, "every alert after restart")
            await asyncio.sleep(1)
        finally:
            second.stop()
    finally:
        await receiver.stop()
    print(report(len(alerts), receiver, want, db) + f" (killed after {killed_at} deliveries)")
    assert receiver.unique() == want  # nothing lost
    # The send in flight at the kill was not committed, so it came again, same event id.
    assert receiver.duplicates() >= 1
    assert dead_letters(db) == []
    for transaction in transactions:  # in order per transaction, first deliveries
        sent = [str(a.id) for a in alerts if a.transaction_id == transaction]
        got: list[str] = []
        for r in receiver.delivered:
            if r.transaction_id == str(transaction) and r.alert_id not in got:
                got.append(r.alert_id)
        assert got == sent


async def test_a_receiver_down_for_30_seconds_then_up_gets_every_alert(
    isolated: Isolated, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    port = free_port()
    subscription = subscribe(db, f"http://127.0.0.1:{port}/hook")
    alerts = [make_alert() for _ in range(30)]
    want = {str(event_id(alert.id, subscription)) for alert in alerts}
    bootstrap, topic = isolated.env["KAFKA_BOOTSTRAP_SERVERS"], isolated.topic("alerts")
    notifier, base = start_notifier(
        isolated,
        tmp_path / "notifier.log",
        f"notifier-{uuid.uuid4().hex[:8]}",
        WEBHOOK_MAX_RETRY_SECONDS="120",
        WEBHOOK_BACKOFF_BASE_SECONDS="0.5",
        WEBHOOK_BACKOFF_CAP_SECONDS="5",
        WEBHOOK_CIRCUIT_OPEN_SECONDS="5",
    )
    receiver = Receiver(port=port)
    try:
        await healthy(notifier, base)
        loop = asyncio.get_running_loop()
        down_since = loop.time()
        await publish_alerts(bootstrap, topic, alerts[:15])
        await asyncio.sleep(10)
        await publish_alerts(bootstrap, topic, alerts[15:])  # more while it is down
        open_gauge = f'webhook_circuit_state{{subscription="{subscription}"}} 2.0'
        await eventually(lambda: open_gauge in metrics_text(base), 15, "the circuit open")
        await asyncio.sleep(max(0.0, 30 - (loop.time() - down_since)))
        await receiver.start()
        await eventually(lambda: receiver.unique() == want, 60, "every alert after the outage")
        await asyncio.sleep(1)
        notifier.assert_running()
    finally:
        notifier.stop()
        await receiver.stop()
    print(report(len(alerts), receiver, want, db) + " (receiver down 30 s)")
    assert receiver.unique() == want
    assert receiver.duplicates() == 0
    assert dead_letters(db) == []
