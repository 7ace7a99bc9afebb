"""Faust's aiokafka consumer runs on the detector's event loop, not in a thread of its own
(detector_worker/delivery.py, InlineConsumerThread): each call Faust makes to it is an await,
not a round trip between two loops (docs/performance.md, session 9)."""

import asyncio
import threading
from pathlib import Path

from detector_worker.delivery import BatchConsumer, DetectorApp, InlineConsumerThread


def _thread_name() -> str:
    return threading.current_thread().name


async def _on_this_thread() -> str:
    return _thread_name()


async def test_the_consumer_service_runs_on_the_apps_loop(tmp_path: Path) -> None:
    app = DetectorApp(
        "test-consumer-on-loop",
        broker="kafka://127.0.0.1:9092",
        store="memory://",
        datadir=tmp_path,
        web_enabled=False,
    )
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    thread = consumer._thread
    assert isinstance(thread, InlineConsumerThread)
    assert thread.thread_loop is asyncio.get_running_loop()
    # What Faust hands "to the thread" (a fetch, a commit) runs here, in this thread.
    assert await thread.call_thread(_on_this_thread) == _thread_name()
