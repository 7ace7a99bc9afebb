"""Which offsets may be committed: a record's offset only once every delivery it started has
ended (delivered or dead-lettered), and only after every earlier record of its partition."""

from collections import OrderedDict
from collections.abc import Iterable

from aiokafka import TopicPartition


class OffsetTracker:
    def __init__(self) -> None:
        # Per partition, in the order consumed: offset -> deliveries still running.
        self._pending: dict[TopicPartition, OrderedDict[int, int]] = {}
        self._committed: dict[TopicPartition, int] = {}

    def add(self, partition: TopicPartition, offset: int, deliveries: int) -> None:
        self._pending.setdefault(partition, OrderedDict())[offset] = deliveries

    def finish(self, partition: TopicPartition, offset: int) -> None:
        """One delivery of the record at `offset` has ended."""
        records = self._pending.get(partition)
        if records is not None and offset in records:
            records[offset] -= 1

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition whose position moved: the offset to commit (the next to read)."""
        moved = {}
        for partition, records in self._pending.items():
            last_done = None
            while records and next(iter(records.values())) <= 0:
                last_done, _ = records.popitem(last=False)
            if last_done is not None:
                moved[partition] = self._committed[partition] = last_done + 1
        return moved

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions taken away by a rebalance: their new owner delivers from its commit."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._committed.pop(partition, None)

    def in_flight(self) -> int:
        return sum(len(records) for records in self._pending.values())
