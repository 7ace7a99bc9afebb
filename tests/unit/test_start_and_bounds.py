"""The gateway's start-up retry and its bound on reads, as pure asyncio (no broker needed)."""

import asyncio

import pytest

from ingest_gateway.deadlines import Overdue, answer_within
from shared.kafka import TopicUnavailable, start_with_backoff


async def test_a_topic_not_there_yet_is_retried_like_a_broker_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # topic_partitions() raises TopicUnavailable while the topic is missing or leaderless:
    # the background connect ended there, silently, and verdicts were never followed.
    monkeypatch.setattr(asyncio, "sleep", _no_pause)
    failures: list[Exception] = [TopicUnavailable("no topic verdicts"), OSError("refused")]
    resets: list[int] = []

    async def start() -> None:
        if failures:
            raise failures.pop(0)

    async def reset() -> None:
        resets.append(1)

    await asyncio.wait_for(start_with_backoff(start, reset), 5)
    assert not failures and len(resets) == 2


@pytest.mark.parametrize("bug", [ValueError("a bug"), KeyError("a bug")])
async def test_an_error_other_than_kafka_s_is_not_retried_forever(bug: Exception) -> None:
    async def start() -> None:
        raise bug

    async def reset() -> None:
        pass

    with pytest.raises(type(bug), match="a bug"):
        await asyncio.wait_for(start_with_backoff(start, reset), 5)


async def test_only_the_bound_is_overdue() -> None:
    async def slow() -> None:
        await asyncio.sleep(10)

    async def times_out_itself() -> None:
        raise TimeoutError("the handler's own")

    with pytest.raises(Overdue):
        await answer_within(0.01, slow())
    with pytest.raises(TimeoutError) as raised:
        await answer_within(5, times_out_itself())
    assert not isinstance(raised.value, Overdue)


async def _no_pause(_: float) -> None:
    return None
