"""The notifier's promises when its Kafka broker goes silent: the broker's JVM is frozen
(SIGSTOP: connections stay open, no byte is answered, as in a GC pause, a frozen VM or a
partition), then resumed (SIGCONT). The broker is the test's own (ops/kafka.sh).

Frozen for longer than the group's session timeout, then resumed: the notifier rejoins by
itself and delivers every alert, the ones published after the resume too. SIGTERM while
frozen: it exits 0 within the bound instead of waiting for the broker to answer again."""

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from benchmarks.support import settings_from
from ingest_gateway.webhooks.matching import event_id
from shared.kafka import ensure_topics, project_topics
from shared.settings import CommonSettings
from tests.conftest import Isolated
from tests.faults.conftest import PrivateKafka, sigterm_and_time
from tests.faults.test_notifier_faults import healthy, report, start_notifier
from tests.processes import Worker
from tests.webhook_helpers import Receiver, dead_letters, eventually, make_alert, publish_alerts
from tests.webhook_helpers import subscribe as subscribe_receiver

pytestmark = pytest.mark.faults

FROZEN_SECONDS = 15.0  # past the consumer's session timeout (aiokafka's 10 s)
# SIGTERM to exit with the broker frozen: the consumer's stop is given up after
# service.CONSUMER_STOP_SECONDS (3 s); with a commit pending, the loop's commit and the
# drain's last one are each given up after COMMIT_TIMEOUT_SECONDS (5 s) first.
EXIT_WITHIN_SECONDS = 10.0
PENDING_EXIT_WITHIN = 5.0 + 5.0 + 3.0 + 4.0


async def notifier_on(
    isolated: Isolated, kafka: PrivateKafka, tmp_path: Path
) -> tuple[Worker, str]:
    await ensure_topics(
        kafka.bootstrap, project_topics(settings_from(CommonSettings, isolated.env))
    )
    group = f"notifier-{uuid.uuid4().hex[:8]}"
    notifier, base = start_notifier(
        isolated, tmp_path / "notifier.log", group, KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap
    )
    await healthy(notifier, base)
    return notifier, base


async def test_a_frozen_broker_is_waited_out_and_every_alert_delivered(
    isolated: Isolated, private_kafka: PrivateKafka, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    receiver = await Receiver().start()
    subscription = subscribe_receiver(db, receiver.url)
    alerts = [make_alert() for _ in range(20)]
    want = {str(event_id(alert.id, subscription)) for alert in alerts}
    topic = isolated.topic("alerts")
    try:
        notifier, _ = await notifier_on(isolated, private_kafka, tmp_path)
        try:
            await publish_alerts(private_kafka.bootstrap, topic, alerts[:10])
            await eventually(lambda: len(receiver.unique()) >= 10, 60, "the first deliveries")
            with private_kafka.frozen():
                await asyncio.sleep(FROZEN_SECONDS)
                notifier.assert_running()
            resumed = time.monotonic()
            await publish_alerts(private_kafka.bootstrap, topic, alerts[10:])
            await eventually(lambda: receiver.unique() == want, 90, "every alert after the resume")
            recovery = time.monotonic() - resumed
            notifier.assert_running()
        finally:
            notifier.stop()
    finally:
        await receiver.stop()
    print(report(len(alerts), receiver, want, db) + f" (all delivered {recovery:.1f}s after)")
    assert receiver.unique() == want
    assert dead_letters(db) == []


@pytest.mark.parametrize("pending", [False, True], ids=["idle", "commit pending"])
async def test_sigterm_while_the_broker_is_frozen_exits_within_the_bound(
    isolated: Isolated,
    private_kafka: PrivateKafka,
    db: psycopg.Connection[Any],
    tmp_path: Path,
    pending: bool,
) -> None:
    # Pending: the one delivery ends while the broker is frozen, so its commit waits on it
    # (one only: more, each 2 s, would keep the drain waiting for them, up to its 15 s).
    receiver = await Receiver(delay=2.0 if pending else 0.0).start()
    subscription = subscribe_receiver(db, receiver.url)
    alerts = [make_alert() for _ in range(1 if pending else 5)]
    want = {str(event_id(alert.id, subscription)) for alert in alerts}
    try:
        notifier, _ = await notifier_on(isolated, private_kafka, tmp_path)
        try:
            await publish_alerts(private_kafka.bootstrap, isolated.topic("alerts"), alerts)
            if pending:
                await eventually(lambda: len(receiver.requests) > 0, 60, "a send in flight")
            else:
                await eventually(lambda: receiver.unique() == want, 60, "the deliveries")
                await asyncio.sleep(1)  # their offsets committed
            with private_kafka.frozen():
                await asyncio.sleep(3)  # in flight: delivered by now, its commit waiting
                code, stopped_in = await sigterm_and_time(notifier.process)
        finally:
            notifier.stop()
    finally:
        await receiver.stop()
    print(f"\nSIGTERM with the broker frozen: exit {code} after {stopped_in:.1f}s")
    assert code == 0, notifier.log_tail()
    assert stopped_in < (PENDING_EXIT_WITHIN if pending else EXIT_WITHIN_SECONDS), (
        notifier.log_tail()
    )
