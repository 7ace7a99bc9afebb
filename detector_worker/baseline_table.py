"""The in-memory baseline table, fed from the compacted `baselines` topic.

A plain consumer, assigned every partition and reading from the beginning, rather than a
Faust table: Faust's table recovery has open bugs with compacted, externally produced
changelogs (faust-streaming #74 #176 #597 #651). Every detector process holds every scope.
"""

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from detector_worker.held_baseline import HeldBaseline, ScopeKey, scope_key
from schemas import Baseline, BaselineScope, MalformedJson, decode_json
from shared.kafka import topic_partitions

log = logging.getLogger(__name__)


class BaselineTable:
    """Latest baseline per scope; a tombstone (None value) removes the scope. Records are
    validated as the wire models, then held as compact rows (see held_baseline)."""

    def __init__(self) -> None:
        self._by_scope: dict[ScopeKey, HeldBaseline] = {}

    @property
    def view(self) -> Mapping[ScopeKey, HeldBaseline]:
        return self._by_scope

    def __len__(self) -> int:
        return len(self._by_scope)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the topic; a malformed record is logged and skipped."""
        try:
            scope = BaselineScope.model_validate(decode_json(key or b""))
            if value is None:
                self._by_scope.pop(scope_key(scope), None)
                return
            baseline = Baseline.model_validate(decode_json(value))
        except (MalformedJson, ValidationError) as exc:
            log.warning("skipping malformed baseline record", extra={"error": str(exc)})
            return
        if baseline.scope != scope:
            log.warning("baseline key and value disagree", extra={"key": scope.label()})
            return
        held = HeldBaseline.of(baseline)
        self._by_scope[held.key] = held


class BaselineFollower:
    """Reads the whole topic into a BaselineTable, then keeps following it."""

    def __init__(self, bootstrap_servers: str, topic: str, table: BaselineTable) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._table = table
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Only whole recomputes: records of an aborted (half-published) one stay unseen.
            isolation_level="read_committed",
        )
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        partitions = await self._partitions()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        end_offsets = await self._consumer.end_offsets(partitions)
        self._task = asyncio.create_task(self._run(end_offsets), name="baseline-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        ids = await topic_partitions(self._bootstrap_servers, self._topic)
        return [TopicPartition(self._topic, p) for p in ids]

    async def _run(self, end_offsets: dict[TopicPartition, int]) -> None:
        pending = {tp: end for tp, end in end_offsets.items() if end > 0}
        if not pending:
            self.caught_up.set()
        while True:
            # At most ~60 ms of the loop per call (~64 µs a baseline): the transactions'
            # consumer shares this loop, and its heartbeats wait behind whatever holds it.
            batches = await self._consumer.getmany(timeout_ms=500, max_records=1_000)
            for records in batches.values():
                for record in records:
                    self._table.apply(record.key, record.value)
            if not self.caught_up.is_set():
                for tp in list(pending):
                    if await self._consumer.position(tp) >= pending[tp]:
                        del pending[tp]
                if not pending:
                    log.info("baseline table caught up", extra={"scopes": len(self._table)})
                    self.caught_up.set()
