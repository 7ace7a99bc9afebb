"""jalytics-backtest on small files: what a user gets from their own history."""

import csv
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.backtest import main

START = datetime(2025, 3, 1, tzinfo=UTC)
FIELDS = ["amount", "category", "merchant", "transaction_date", "currency", "is_fraud"]


def history(spike_at: int = 700) -> list[dict[str, object]]:
    """24 days of a cafe around 8.00, one 400.00 spike on the last days, labelled."""
    rng = random.Random(3)
    rows: list[dict[str, object]] = []
    for i in range(720):
        amount = 400.0 if i == spike_at else round(8 * math.exp(rng.gauss(0, 0.3)), 2)
        rows.append(
            {
                "amount": f"{amount:.2f}",
                "category": "food",
                "merchant": "Cafe",
                "transaction_date": (START + timedelta(hours=0.8 * i)).isoformat(),
                "currency": "USD",
                "is_fraud": "true" if i == spike_at else "false",
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]], junk: list[str]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(j + "\n" for j in junk))
    return path


def test_a_labelled_history_gives_precision_recall_and_a_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = [
        "not json",
        json.dumps(
            {
                "amount": "-1",
                "category": "food",
                "merchant": "Cafe",
                "transaction_date": START.isoformat(),
            }
        ),
        json.dumps(
            {
                "amount": "1.00",
                "category": "food",
                "merchant": "Cafe",
                "transaction_date": "2025-03-01T00:00:00",
            }
        ),  # no time zone
    ]
    source = write_jsonl(tmp_path / "history.jsonl", history(), junk)
    png, alerts = tmp_path / "curve.png", tmp_path / "alerts.jsonl"
    main(
        [
            str(source),
            "--label-column",
            "is_fraud",
            "--warmup-days",
            "20",
            "--method",
            "tail",
            "zscore",
            "--png",
            str(png),
            "--alerts",
            str(alerts),
        ]
    )
    out = capsys.readouterr().out
    assert "720 rows" in out and "3 rows rejected" in out
    assert "## tail" in out and "## zscore" in out
    # The spike is the only labelled anomaly: tail catches it at high or above.
    high_row = next(line for line in out.splitlines() if line.startswith("| high |"))
    assert high_row.split("|")[4].strip() == "1.00"  # recall
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    flagged = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert any(a["label"] and a["transaction"]["amount"] == "400.00" for a in flagged)
    assert all("label_value" not in a["transaction"] for a in flagged)


def test_csv_reads_like_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "history.csv"
    with source.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(history())
    main([str(source), "--label-column", "is_fraud", "--warmup-days", "20"])
    csv_out = capsys.readouterr().out
    main(
        [
            str(write_jsonl(tmp_path / "h.jsonl", history(), [])),
            "--label-column",
            "is_fraud",
            "--warmup-days",
            "20",
        ]
    )
    json_out = capsys.readouterr().out
    assert csv_out.split("\n", 1)[1] == json_out.split("\n", 1)[1]  # all but the file name


def test_bad_tiers_are_refused_naming_the_option(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "h.jsonl", history(), [])
    with pytest.raises(SystemExit, match="--tiers"):
        main([str(source), "--tiers", "medium=3,high=2,critical=5"])
