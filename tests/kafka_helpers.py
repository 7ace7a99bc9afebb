"""Reading topics back in tests, the normal history the end-to-end tests start from, and a
producer in the state a broker restart can leave."""

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from schemas import Transaction, encode_model
from schemas.records import transaction_key
from shared.kafka import make_producer, topic_partitions


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        offsets = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord]], bool],
    timeout: float = 30.0,
) -> list[ConsumerRecord]:
    """Read from the beginning until `until(records)` holds; raise on timeout."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout):
            while not until(records):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    except TimeoutError as exc:
        raise AssertionError(f"{topic}: condition not met; read {len(records)} records") from exc
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[ConsumerRecord]:
    """Every committed record currently in the topic (read until each partition's end;
    transaction markers take offsets too, so counting records would not do)."""
    partitions = [
        TopicPartition(topic, p) for p in await _partitions_when_ready(bootstrap, topic, timeout)
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(timeout):
            while any([await consumer.position(tp) < end for tp, end in ends.items()]):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def produce_history(
    env: dict[str, str], count: int, *, then: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Normal spending, pushed straight to Kafka as a producer would: mean 100, sd about 10;
    then the raw (key, value) records `then`."""
    producer = make_producer(env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        now = datetime.now(UTC)
        for i in range(count):
            txn = Transaction(
                id=uuid4(),
                amount=90 if i % 2 else 110,
                category="food",
                merchant="Starbucks",
                transaction_date=now - timedelta(hours=i),
                received_at=now,
            )
            await producer.send(
                env["TOPIC_TRANSACTIONS"], key=transaction_key(txn.id), value=encode_model(txn)
            )
        for key, value in then:
            await producer.send(env["TOPIC_TRANSACTIONS"], key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


class DeadProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """An aiokafka producer after its sender task died of OutOfOrderSequenceNumber (a broker
    restart lost the tail of a partition; seen in CI): every send raises a copy of it."""

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        raise OutOfOrderSequenceNumber()

    async def send_batch(self, *args: Any, **kwargs: Any) -> Any:
        raise OutOfOrderSequenceNumber()


async def _partitions_when_ready(bootstrap: str, topic: str, timeout: float) -> list[int]:
    """The topic's partitions, asked again while the broker cannot say: one just thawed from
    SIGSTOP answered a metadata request without brokers (NodeNotReadyError, node None)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await topic_partitions(bootstrap, topic)
            except KafkaError:
                await asyncio.sleep(0.5)
