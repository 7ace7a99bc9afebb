"""Faust's aiokafka consumer on the detector's loop (detector_worker/delivery.py,
InlineConsumerThread) when its start fails: what it opened is closed at once, as Faust's
own consumer thread does, not left to a stop that may never come."""

import asyncio
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from detector_worker.delivery import BatchConsumer, DetectorApp, InlineConsumerThread
from tests.processes import free_port


async def test_a_consumer_whose_start_fails_is_closed_at_once(tmp_path: Path) -> None:
    app = DetectorApp(
        "test-consumer-start-failure",
        broker=f"kafka://127.0.0.1:{free_port()}",  # nothing listens: the bootstrap fails
        store="memory://",
        datadir=tmp_path,
        web_enabled=False,
    )
    assert isinstance(app.consumer, BatchConsumer)
    thread = app.consumer._thread
    assert isinstance(thread, InlineConsumerThread)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(thread.start(), 30)
    consumer = thread._consumer
    assert consumer is not None
    # It was left open (an "Unclosed AIOKafkaConsumer" with its client's tasks).
    assert consumer._closed
    assert thread._stopped.is_set()
    await thread.stop()  # the stop that follows has nothing left to do
