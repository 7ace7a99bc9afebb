"""When the baseline worker's next recompute is due (baseline_worker/cadence.py)."""

import asyncio

from baseline_worker.cadence import Cadence, wait_until_due

CADENCE = Cadence(interval_seconds=60, growth_share=0.02, min_gap_seconds=5, poll_seconds=1)


def test_the_interval_alone_makes_a_recompute_due() -> None:
    assert CADENCE.due(60, 0, 100_000)
    assert not CADENCE.due(59, 0, 100_000)
    assert not CADENCE.due(59, None, 100_000)  # the counter unreadable: the interval only


def test_rows_stored_since_bring_it_forward_past_the_minimum_gap() -> None:
    assert CADENCE.due(6, 2_000, 100_000)  # 2 % of the window
    assert not CADENCE.due(6, 1_999, 100_000)
    assert not CADENCE.due(4, 50_000, 100_000)  # never sooner than min_gap_seconds
    assert CADENCE.due(6, 1, 0)  # an empty window: the first rows are worth a recompute


def test_a_zero_share_keeps_the_interval_only() -> None:
    interval_only = Cadence(interval_seconds=60, growth_share=0)
    assert not interval_only.due(30, 10**9, 1)
    assert interval_only.pause(10, watching=True) == 50


def test_it_polls_after_the_minimum_gap_and_never_past_the_interval() -> None:
    assert CADENCE.pause(0, watching=True) == 5
    assert CADENCE.pause(7, watching=True) == 1
    assert CADENCE.pause(59.5, watching=True) == 0.5
    assert CADENCE.pause(7, watching=False) == 53


def test_waiting_returns_the_reason() -> None:
    fast = Cadence(interval_seconds=0.5, growth_share=0.1, min_gap_seconds=0.01, poll_seconds=0.01)
    counter = iter(range(0, 1000, 3))

    async def read() -> int:
        return next(counter)

    async def main() -> tuple[str, str, str]:
        stopping = asyncio.Event()
        grown = await wait_until_due(fast, stopping, read, 0, 50)  # 5 rows wanted
        idle = await wait_until_due(fast, stopping, read, None, 50)  # no counter
        stopping.set()
        stopped = await wait_until_due(fast, stopping, read, 0, 50)
        return grown, idle, stopped

    assert asyncio.run(main()) == ("growth", "interval", "stop")


def test_a_recompute_waits_at_least_as_long_as_the_last_one_took() -> None:
    quick = Cadence(interval_seconds=60, growth_share=0.02, min_gap_seconds=1, poll_seconds=1)
    assert quick.due(1.5, 2_000, 100_000)
    slow = quick.after(took_seconds=1.8)  # a 10 M-row window's recompute
    assert not slow.due(1.5, 50_000, 100_000)
    assert slow.due(1.8, 2_000, 100_000)
    assert quick.after(took_seconds=0.2) == quick  # the configured gap stays the floor
