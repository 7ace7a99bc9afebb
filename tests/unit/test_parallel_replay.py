"""The backtest's replay in several processes: the groups of scopes, and the same output."""

import json
import math
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from tqdm import tqdm

from benchmarks import parallel_replay
from benchmarks.backtest import main
from benchmarks.parallel_replay import scope_groups, shares
from schemas import Transaction

START = datetime(2025, 3, 1, tzinfo=UTC)
# (category, merchant, currency, typical amount): "Deli" sells in two categories, which
# ties food and groceries into one group; the EUR cafe is a scope of its own.
SHOPS = [
    ("food", "Cafe", "USD", 8.0),
    ("food", "Deli", "USD", 15.0),
    ("groceries", "Deli", "USD", 40.0),
    ("groceries", "Market", "USD", 60.0),
    ("fuel", "Station", "USD", 50.0),
    ("fuel", "Garage", "USD", 90.0),
    ("food", "Cafe", "EUR", 6.0),
]


def txn(category: str, merchant: str, currency: str = "USD") -> Transaction:
    return Transaction(
        id=UUID(int=random.getrandbits(128)),
        amount=Decimal("10.00"),
        category=category,
        merchant=merchant,
        currency=currency,
        transaction_date=START,
    )


def test_scopes_tied_by_a_merchant_or_a_category_form_one_group() -> None:
    rows = [
        txn("food", "Cafe"),
        txn("fuel", "Station"),
        txn("groceries", "Deli"),
        txn("food", "Deli"),
        txn("food", "Cafe", "EUR"),
        txn("groceries", "Market"),
    ]
    groups = scope_groups(rows)
    assert groups == [[0, 2, 3, 5], [1], [4]]
    assert shares(groups, 2) == [[0, 2, 3, 5], [1, 4]]
    assert shares(groups, 8) == [[0, 2, 3, 5], [1], [4]]


def history() -> list[dict[str, object]]:
    """20 days of the shops, a spike or two labelled in each."""
    rng = random.Random(5)
    rows: list[dict[str, object]] = []
    for i in range(2400):
        category, merchant, currency, typical = SHOPS[i % len(SHOPS)]
        spike = i % 397 == 300
        amount = typical * (30 if spike else math.exp(rng.gauss(0, 0.4)))
        rows.append(
            {
                "id": str(UUID(int=rng.getrandbits(128))),
                "amount": f"{amount:.2f}",
                "category": category,
                "merchant": merchant,
                "currency": currency,
                "transaction_date": (START + timedelta(minutes=12 * i)).isoformat(),
                "is_fraud": spike,
            }
        )
    return rows


def test_workers_print_and_write_what_one_process_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "history.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in history()))
    outputs = []
    for workers in (1, 3):
        alerts = tmp_path / f"alerts-{workers}.jsonl"
        main(
            [
                str(source),
                "--label-column",
                "is_fraud",
                "--warmup-days",
                "5",
                "--method",
                "tail",
                "zscore",
                "--workers",
                str(workers),
                "--alerts",
                str(alerts),
            ]
        )
        outputs.append((capsys.readouterr().out, alerts.read_text()))
    (one_report, one_alerts), (three_report, three_alerts) = outputs
    assert "| high |" in one_report and one_alerts.count("\n") > 10
    assert three_report == one_report
    assert three_alerts == one_alerts


def _dies_or_waits(sender: Any, transactions: Any, indices: list[int], *_: Any) -> None:
    if indices == [0]:
        os._exit(3)  # killed mid-replay: no result, no traceback through the pipe
    time.sleep(60)


def test_a_worker_that_dies_fails_the_replay_at_once_and_stops_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel_replay, "_worker", _dies_or_waits)
    started = time.monotonic()
    with tqdm(total=2, disable=True) as progress, pytest.raises(RuntimeError, match="ended"):
        parallel_replay._in_processes([], [[0], [1]], None, None, progress, {})  # type: ignore[arg-type]
    # Without the clean-up the waiting worker was joined: a minute before the error.
    assert time.monotonic() - started < 30
