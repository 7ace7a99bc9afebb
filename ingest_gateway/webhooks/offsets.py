"""Which offsets may be committed: a record's offset only once every delivery it started has
ended (delivered or dead-lettered), and only after every earlier record of its partition."""

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition


@dataclass
class Ticket:
    """One record's deliveries still running. Finishing goes through the ticket, not the
    offset: a delivery of a partition that was revoked (and perhaps assigned back since, its
    offsets read again) can never count for the new reading."""

    remaining: int

    def finish(self) -> None:
        self.remaining -= 1


class OffsetTracker:
    def __init__(self) -> None:
        # Per partition, in the order consumed: offset -> its ticket.
        self._pending: dict[TopicPartition, OrderedDict[int, Ticket]] = {}

    def add(self, partition: TopicPartition, offset: int, deliveries: int) -> Ticket:
        ticket = Ticket(deliveries)
        self._pending.setdefault(partition, OrderedDict())[offset] = ticket
        return ticket

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition whose position moved: the offset to commit (the next to read)."""
        moved = {}
        for partition, records in self._pending.items():
            last_done = None
            while records and next(iter(records.values())).remaining <= 0:
                last_done, _ = records.popitem(last=False)
            if last_done is not None:
                moved[partition] = last_done + 1
        return moved

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions taken away by a rebalance: their new owner delivers from its commit."""
        for partition in partitions:
            self._pending.pop(partition, None)

    def in_flight(self) -> int:
        return sum(len(records) for records in self._pending.values())
