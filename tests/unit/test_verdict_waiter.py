"""The gateway's wait for a verdict (ingest_gateway/verdicts.py), without Kafka: callers share
one timer, and each gets its verdict, or None once its own time is up, never early."""

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import uuid4

import pytest

from ingest_gateway import verdicts
from ingest_gateway.verdicts import VerdictWaiter
from schemas import Verdict, VerdictReceipt
from schemas.records import transaction_key

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_the_receipt_reads_verdicts_fields_with_verdicts_types() -> None:
    for name, field in VerdictReceipt.model_fields.items():
        if name != "baseline":  # read only as there or not
            assert field.annotation == Verdict.model_fields[name].annotation, name


async def test_each_caller_gets_its_verdict_or_none_when_its_own_time_is_up() -> None:
    waiter = VerdictWaiter("127.0.0.1:1", "verdicts", 0.2)  # never started: fed by hand below
    answered, late, never = uuid4(), uuid4(), uuid4()
    futures = {txn: waiter.expect(txn) for txn in (answered, late, never)}
    started = time.monotonic()
    first = asyncio.create_task(waiter.wait(futures[never]))
    await asyncio.sleep(0.35)
    assert first.done() and first.result() is None  # its own time, not a later caller's
    waits = [asyncio.create_task(waiter.wait(futures[txn])) for txn in (late, answered)]
    await asyncio.sleep(0.05)
    verdict = Verdict(transaction_id=answered, anomaly=True, severity="high", scored_at=NOW)
    waiter._resolve(transaction_key(answered), verdict.model_dump_json().encode())
    assert await waits[1] == VerdictReceipt.model_validate(verdict.model_dump())
    assert time.monotonic() - started < 0.55
    assert await waits[0] is None
    assert time.monotonic() - started >= 0.55  # the last caller waited its whole time


async def test_a_verdict_is_not_taken_for_another_transactions() -> None:
    waiter = VerdictWaiter("127.0.0.1:1", "verdicts", 0.1)
    waiting, other = uuid4(), uuid4()
    future = waiter.expect(waiting)
    mislabelled = Verdict(transaction_id=other, anomaly=True, severity="high", scored_at=NOW)
    waiter._resolve(transaction_key(waiting), mislabelled.model_dump_json().encode())
    waiter._resolve(transaction_key(waiting), b"{not json")
    waiter._resolve(transaction_key(other), mislabelled.model_dump_json().encode())
    assert await waiter.wait(future) is None


class _FailingConsumer:
    async def getmany(self, **_: object) -> dict[object, list[object]]:
        raise RuntimeError("the reader broke")


class _OneVerdictConsumer:
    """Hands over one record, then nothing."""

    def __init__(self, key: bytes, value: bytes) -> None:
        self._records: list[object] = [SimpleNamespace(key=key, value=value)]

    async def getmany(self, **_: object) -> dict[object, list[object]]:
        records, self._records = self._records, []
        if not records:
            await asyncio.sleep(0.01)
        return {"partition": records}


async def test_a_reader_that_failed_is_replaced_and_says_so_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader that fails is replaced by a new one from the topic's end (it stayed dead,
    and the gateway without verdicts, until restarted); /ready says not started meanwhile."""
    monkeypatch.setattr(verdicts, "_RESTART_PAUSE", 0.05)
    waiter = VerdictWaiter("127.0.0.1:1", "verdicts", 2.0)
    txn = uuid4()
    verdict = Verdict(transaction_id=txn, anomaly=False, scored_at=NOW)
    replaced = asyncio.Event()

    async def follow_again() -> None:
        assert not waiter.started  # failed, not yet following again
        waiter._consumer = _OneVerdictConsumer(
            transaction_key(txn), verdict.model_dump_json().encode()
        )
        waiter._following = True
        replaced.set()

    async def nothing() -> None:
        pass

    waiter._consumer = _FailingConsumer()
    waiter._following = True
    monkeypatch.setattr(waiter, "_follow_from_end", follow_again)
    monkeypatch.setattr(waiter, "_replace_unstarted", nothing)
    future = waiter.expect(txn)
    waiter._task = asyncio.create_task(waiter._run())
    try:
        assert await waiter.wait(future) == VerdictReceipt.model_validate(verdict.model_dump())
        assert replaced.is_set() and waiter.started
    finally:
        waiter._task.cancel()
        await asyncio.wait({waiter._task})
    assert not waiter.started  # stopped
