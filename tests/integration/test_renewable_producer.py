"""RenewableProducer on the real broker: a producer that can never send again is replaced,
once however many callers saw it fail, and the new one sends; a live one is kept."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.errors import KafkaError, KafkaTimeoutError, OutOfOrderSequenceNumber

from benchmarks.support import delete_topics
from shared.kafka import (
    RenewableProducer,
    TopicSpec,
    ensure_topics,
    make_producer,
    topic_partitions,
)


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    name = f"renewable-{uuid.uuid4().hex[:10]}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(name, 1, 1)])
    await topic_partitions(kafka_bootstrap, name)
    yield name
    await delete_topics(kafka_bootstrap, [name])


@pytest.fixture
async def producers(kafka_bootstrap: str) -> AsyncIterator[RenewableProducer]:
    handle = RenewableProducer(lambda: make_producer(kafka_bootstrap, linger_ms=0))
    await handle.start()
    yield handle
    await handle.stop()


async def test_a_fatal_error_replaces_the_producer_once(
    producers: RenewableProducer, topic: str
) -> None:
    dead = producers.current
    # Five requests in flight all saw the same dead producer fail.
    renewed = await asyncio.gather(
        *(producers.renew_if_broken(dead, OutOfOrderSequenceNumber()) for _ in range(5))
    )
    assert renewed == [True] * 5
    assert producers.renewals == 1 and producers.current is not dead
    await producers.current.send_and_wait(topic, b"after")


async def test_a_producer_whose_sender_ended_is_replaced(
    producers: RenewableProducer, topic: str
) -> None:
    dead = producers.current
    await dead.stop()  # ends its sender task, as an unexpected error in it does
    assert await producers.renew_if_broken(dead, KafkaError("Unexpected error during delivery"))
    await producers.current.send_and_wait(topic, b"after")


async def test_a_transient_error_keeps_the_producer(producers: RenewableProducer) -> None:
    live = producers.current
    assert not await producers.renew_if_broken(live, KafkaTimeoutError())
    producers.renew_soon(live, KafkaTimeoutError())
    assert producers.current is live and producers.renewals == 0


async def test_renew_soon_replaces_in_the_background(producers: RenewableProducer) -> None:
    dead = producers.current
    producers.renew_soon(dead, OutOfOrderSequenceNumber())
    producers.renew_soon(dead, OutOfOrderSequenceNumber())  # one renewal at a time
    for _ in range(100):
        if producers.current is not dead:
            break
        await asyncio.sleep(0.1)
    assert producers.renewals == 1 and producers.current is not dead
