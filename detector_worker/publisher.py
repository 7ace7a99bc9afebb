"""The detector's records onto Kafka (the RecordPublisher port over a RenewableProducer)."""

import asyncio
from collections import defaultdict
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from detector_worker.ports import OutgoingRecord
from shared.kafka import Message, RenewableProducer, send_in_batches


class KafkaPublisher:
    def __init__(self, producer: RenewableProducer) -> None:
        self._producer = producer

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        producer = self._producer.current
        try:
            await _send_all(producer, records)
        except KafkaError as exc:
            # A dead producer is replaced before the retry, which sends the whole batch again.
            await self._producer.renew_if_broken(producer, exc)
            raise


async def _send_all(producer: AIOKafkaProducer, records: Sequence[OutgoingRecord]) -> None:
    """Keyed records one send() each; co-partitioned ones as whole record batches per
    partition, which is much cheaper (see docs/performance.md)."""
    sends: list[asyncio.Future[object]] = []
    batches: dict[tuple[str, int], list[Message]] = defaultdict(list)
    partition_counts: dict[str, int] = {}
    for record in records:
        if record.co_partition is None:
            sends.append(
                await producer.send(
                    record.topic, key=record.key, value=record.value, headers=record.headers
                )
            )
            continue
        if record.topic not in partition_counts:
            partition_counts[record.topic] = len(await producer.partitions_for(record.topic))
        partition = record.co_partition % partition_counts[record.topic]
        batches[(record.topic, partition)].append((record.key, record.value))
    for (topic, partition), messages in batches.items():
        sends += await send_in_batches(producer, topic, partition, messages)
    await asyncio.gather(*sends)
