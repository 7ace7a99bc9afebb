"""How long a batch lingers for more records (detector_worker/batching.py)."""

import asyncio
import time

from detector_worker.batching import linger


async def _arrivals(events: list[object], every: float, count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(every)
        events.append(object())


async def test_a_quiet_stream_is_taken_after_the_quiet_gap_not_the_window() -> None:
    started = time.monotonic()
    await linger([object()], max_=100, within=1.0, quiet=0.01)
    assert time.monotonic() - started < 0.5


async def test_a_busy_stream_fills_the_batch_until_the_window() -> None:
    events: list[object] = [object()]
    feeder = asyncio.create_task(_arrivals(events, every=0.002, count=1000))
    started = time.monotonic()
    await linger(events, max_=10_000, within=0.2, quiet=0.02)
    feeder.cancel()
    assert 0.19 <= time.monotonic() - started < 0.5
    assert len(events) > 10


async def test_a_full_batch_is_taken_at_once() -> None:
    started = time.monotonic()
    await linger([object()] * 5, max_=5, within=1.0, quiet=0.5)
    assert time.monotonic() - started < 0.1


async def test_a_backlog_keeps_the_batch_open_until_the_window() -> None:
    # A process short of CPU: nothing joined during the gap, but records are waiting.
    started = time.monotonic()
    await linger([object()], max_=100, within=0.1, quiet=0.01, backlog=lambda: True)
    assert 0.09 <= time.monotonic() - started < 0.5
