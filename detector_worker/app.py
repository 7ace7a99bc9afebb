"""The Faust app: one agent that scores the `transactions` stream in batches."""

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import faust
import mode
from prometheus_client import CollectorRegistry

from detector_worker.records import RawRecord
from detector_worker.runtime import DetectorRuntime
from detector_worker.settings import DetectorSettings

log = logging.getLogger(__name__)

# Exit code when an unexpected error leaves the batch in an unknown state: the supervisor
# restarts the process and the batch is replayed from the last committed offset.
EXIT_UNEXPECTED = 70


def _faust_app(settings: DetectorSettings) -> faust.App:
    servers = [
        f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")
    ]
    return faust.App(
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
        stream_buffer_maxsize=settings.batch_max_records * 2,
        broker_commit_interval=1.0,
    )


def create_app(settings: DetectorSettings, registry: CollectorRegistry) -> faust.App:
    app = _faust_app(settings)
    runtime = DetectorRuntime(settings, registry)
    source = app.topic(
        settings.topic_transactions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

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
        async for events in stream.take_events(
            settings.batch_max_records, within=settings.batch_max_wait_seconds
        ):
            records = [
                RawRecord(
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.message.key,
                    e.message.value,
                )
                for e in events
            ]
            try:
                await runtime.pipeline.process(records)
            except Exception:
                # take_events acknowledges the batch when this body returns or raises: leave
                # without returning, so the offsets of a half-done batch are never committed.
                log.critical("unexpected error in batch; exiting for a clean replay", exc_info=True)
                logging.shutdown()
                os._exit(EXIT_UNEXPECTED)

    app.jalytics_runtime = runtime  # type: ignore[attr-defined]
    return app
