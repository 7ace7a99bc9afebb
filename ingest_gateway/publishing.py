"""Publishing accepted transactions to Kafka: the gateway's only write to the transaction log."""

import asyncio
import logging
import time

from aiokafka.errors import KafkaError

from ingest_gateway.deadlines import SharedDeadline
from ingest_gateway.metrics import GatewayMetrics
from schemas import Transaction, encode_model
from schemas.records import transaction_key
from shared.kafka import RenewableProducer

log = logging.getLogger(__name__)


class Publisher:
    """Sends transactions (key = transaction id) and waits for the broker's acks=all."""

    def __init__(
        self, producers: RenewableProducer, topic: str, timeout: float, metrics: GatewayMetrics
    ) -> None:
        self._producers = producers
        self._topic = topic
        # Every publish is bounded by the same timeout: one timer for all (deadlines.py).
        self._deadline = SharedDeadline(timeout)
        self._metrics = metrics

    async def publish(self, transactions: list[Transaction]) -> list[bool]:
        """Per transaction, whether the broker acknowledged it within the timeout.

        False does not mean "not recorded": the producer keeps a record it could not deliver
        in time and retries it (an idempotent producer never expires a batch), so it may land
        later. Callers say the outcome is unknown and how to retry without a duplicate.
        """
        if not transactions:
            return []
        started = time.perf_counter()
        if len(transactions) == 1:  # the common case: no task per request for gather()
            outcomes = [await self._send(transactions[0])]
        else:
            outcomes = list(await asyncio.gather(*(self._send(txn) for txn in transactions)))
        self._metrics.publish_duration.observe(time.perf_counter() - started)
        return outcomes

    async def _send(self, txn: Transaction) -> bool:
        producer = self._producers.current
        # The bound covers the whole publish: with the broker gone, send() itself waits for
        # metadata, and a client must get its answer in bounded time, not hang.
        try:
            async with self._deadline.bound():
                await producer.send_and_wait(
                    self._topic, key=transaction_key(txn.id), value=encode_model(txn)
                )
        except (KafkaError, TimeoutError) as exc:
            self._metrics.publish_failures.inc()
            self._producers.renew_soon(producer, exc)
            log.error("publish failed", extra={"transaction_id": str(txn.id), "error": repr(exc)})
            return False
        return True
