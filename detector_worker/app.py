"""The Faust app: one agent that scores the `transactions` stream in batches."""

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import faust
import mode
from faust.types import Message
from prometheus_client import CollectorRegistry

from detector_worker.batching import take_quiet
from detector_worker.delivery import DetectorApp
from detector_worker.records import RawRecord
from detector_worker.retry import StopRequested
from detector_worker.runtime import LAG_REFRESH_SECONDS, DetectorRuntime, settle_heap
from detector_worker.settings import DetectorSettings

log = logging.getLogger(__name__)

# Exit code when an unexpected error leaves the batch in an unknown state: the supervisor
# restarts the process and the batch is replayed from the last committed offset.
EXIT_UNEXPECTED = 70
# Exit code of a stop asked for while a batch was being retried: a normal stop, though the
# batch is left uncommitted (it is replayed by the next owner of its partitions).
EXIT_STOPPED = 0
# A stop still going this long after SIGTERM waits on a dependency gone silent: the process
# leaves anyway (DetectorApp.leave_when_stop_overdue), well before a supervisor's SIGKILL at
# 30 s (supervisord's stopwaitsecs, compose's stop_grace_period).
STOP_DEADLINE_SECONDS = 15.0
# At most this many transaction ids (record keys) in the log line of a failed batch.
_LOGGED_IDS = 20


def _faust_app(settings: DetectorSettings) -> DetectorApp:
    servers = [
        f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")
    ]
    return DetectorApp(
        settings.consumer_group,
        broker=servers,
        store="memory://",
        datadir=Path(tempfile.gettempdir()) / f"jalytics-faust-{settings.consumer_group}",
        web_enabled=False,
        # Topics are created by the project with explicit settings, never by Faust.
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=settings.batch_max_records,
        broker_commit_interval=1.0,
        # A dead member is noticed after this long; its partitions then move (default 60 s).
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.session_timeout_seconds / 5,
    )


def batch_context(records: Sequence[RawRecord]) -> dict[str, object]:
    """Where a failed batch came from, for its log line: offsets per partition and the first
    transaction ids (record keys), so that an operator can find the records."""
    offsets: dict[str, list[int]] = {}
    for record in records:
        offsets.setdefault(f"{record.topic}/{record.partition}", []).append(record.offset)
    return {
        "offsets": {tp: [min(o), max(o)] for tp, o in offsets.items()},
        "records": len(records),
        "transaction_ids": [
            r.key.decode("utf-8", "replace") for r in records[:_LOGGED_IDS] if r.key
        ],
    }


def create_app(settings: DetectorSettings, registry: CollectorRegistry) -> faust.App:
    app = _faust_app(settings)
    app.leave_when_stop_overdue(STOP_DEADLINE_SECONDS, _leave_overdue_stop)
    runtime = DetectorRuntime(settings, registry, stop_requested=lambda: app.should_stop)
    source = app.topic(
        settings.topic_transactions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    # Up to two fetches (of at most batch_max_records each) wait for the agent.
    inbox = app.inbox(settings.topic_transactions, max_fetches=2)

    @app.service
    class Runtime(mode.Service):
        async def on_start(self) -> None:
            await runtime.start()

        async def on_stop(self) -> None:
            await runtime.stop()

    # concurrency=1: with more, Faust can commit past a record still in flight (#606).
    @app.agent(source, concurrency=1)
    async def detect(stream: Any) -> None:
        await runtime.ready.wait()
        settle_heap()
        # Iterating the agent's channel subscribes the topic (Faust's conductor); its records
        # then reach the inbox a fetch at a time, not through the stream (delivery.py).
        aiter(stream.channel)
        async for messages in take_quiet(
            inbox,
            settings.batch_max_records,
            within=settings.batch_max_wait_seconds,
            quiet=settings.batch_quiet_seconds,
        ):
            records = raw_records(messages)
            try:
                await runtime.pipeline.process(records)
            except Exception as exc:
                exit_for(records, exc)
            # Durable: the batch's offsets may be committed (by Faust's commit loop).
            inbox.ack(messages)

    async def refresh_lag() -> None:
        await runtime.refresh_lag(app.consumer)

    app.timer(interval=LAG_REFRESH_SECONDS)(refresh_lag)
    return app


def raw_records(messages: list[Message]) -> list[RawRecord]:
    return [RawRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in messages]


def _leave_overdue_stop() -> NoReturn:
    log.error(
        "stop overdue (a dependency does not answer); leaving without committing",
        extra={"seconds": STOP_DEADLINE_SECONDS},
    )
    logging.shutdown()
    os._exit(EXIT_STOPPED)


def exit_for(records: Sequence[RawRecord], error: BaseException) -> NoReturn:
    """Leave without returning: the offsets of a batch not made durable are never committed,
    and the process restarts clean (the supervisor's job)."""
    if isinstance(error, StopRequested):
        # Asked to stop while the batch was being retried: a normal stop.
        log.warning("stopping with a batch not yet durable", extra=batch_context(records))
        logging.shutdown()
        os._exit(EXIT_STOPPED)
    log.critical(
        "unexpected error in batch; exiting for a clean replay",
        exc_info=error,
        extra=batch_context(records),
    )
    logging.shutdown()
    os._exit(EXIT_UNEXPECTED)
