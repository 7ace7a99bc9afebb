"""jalytics-backtest on small files: what a user gets from their own history."""

import csv
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.backtest import NO_GROUP, _cell, _group, main

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


def two_shops() -> list[dict[str, object]]:
    """The cafe's history (region north) beside a bookshop's around 20.00, half of its rows
    with no region: rows in time order."""
    rng = random.Random(5)
    rows = [{**row, "region": "north"} for row in history()]
    for i in range(720):
        book: dict[str, object] = {
            "amount": f"{20 * math.exp(rng.gauss(0, 0.2)):.2f}",
            "category": "books",
            "merchant": "Bookshop",
            "transaction_date": (START + timedelta(hours=0.8 * i, minutes=7)).isoformat(),
            "currency": "USD",
            "is_fraud": "false",
        }
        if i % 2:
            book["region"] = "south | east"  # a pipe, escaped in the table
        rows.append(book)
    return sorted(rows, key=lambda row: str(row["transaction_date"]))


def counted_groups(path: Path) -> dict[str, Any]:
    groups: dict[str, Any] = json.loads(path.read_text())["tail"]["by"]["groups"]
    return groups


def test_by_breaks_the_alerts_down_by_any_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, figures = write_jsonl(tmp_path / "h.jsonl", two_shops(), []), tmp_path / "f.json"
    args = ["--label-column", "is_fraud", "--warmup-days", "20", "--json", str(figures)]
    main([str(source), *args, "--by", "region"])
    out = capsys.readouterr().out
    section = out.split("### tail by region", 1)[1].strip().splitlines()
    rows = section[2:]  # past the header and its rule
    # The most alerted group first: the cafe's region, where the spike is.
    assert rows[0].startswith("| north | ") and rows[0].split("|")[8].strip() == "1.00"
    assert sorted(line.split(" | ")[0] for line in rows) == [
        "| (none)",
        "| north",
        "| south \\| east",  # the pipe escaped: still nine cells
    ]
    assert all(line.count(" | ") == 8 for line in rows)
    groups = counted_groups(figures)
    assert next(iter(groups)) == "north" and set(groups) == {"north", "(none)", "south | east"}
    assert groups["north"]["anomalies"] == 1 and groups["north"]["high+"]["recall"] == 1.0
    assert groups["(none)"]["anomalies"] == 0

    # A transaction's own field, from a CSV: the same rows as the JSON lines give.
    with (tmp_path / "h.csv").open("w", newline="") as out_csv:
        writer = csv.DictWriter(out_csv, fieldnames=[*FIELDS, "region"])
        writer.writeheader()
        writer.writerows(two_shops())
    main([str(tmp_path / "h.csv"), *args, "--by", "category"])
    by_category = counted_groups(figures)
    assert list(by_category) == ["food", "books"]
    assert by_category["food"]["rows"] == groups["north"]["rows"]
    books = groups["(none)"]["rows"] + groups["south | east"]["rows"]
    assert by_category["books"]["rows"] == books > 100
    assert by_category["books"]["alerts"]["high"] + by_category["books"]["alerts"]["critical"] == 0


def test_a_group_is_named_as_its_value_reads() -> None:
    assert _group("Bookshop") == "Bookshop"
    assert _group(None) == _group("") == NO_GROUP
    assert _group(3) == "3" and _group(1.5) == "1.5" and _group(True) == "true"
    assert _cell("a|b\nc") == "a\\|b c"
