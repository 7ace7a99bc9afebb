"""The blind stream: deterministic per seed, ~0.4 % anomalies, an exact oracle in [0, 1]
that falls as the amount grows within a merchant."""

import itertools
import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from benchmarks.blind_stream import (
    Continuous,
    Discrete,
    beta_sf,
    explain,
    gamma_q,
    generate,
    main,
)

END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    return [row.record() for row in generate(7, 20_000, END)]


def test_deterministic_per_seed(records: list[dict[str, object]]) -> None:
    again = [row.record() for row in generate(7, 20_000, END)]
    other = [row.record() for row in generate(8, 20_000, END)]
    assert again == records
    assert other != records


def test_anomaly_share_and_kinds(records: list[dict[str, object]]) -> None:
    anomalies = [r for r in records if r["is_fraud"]]
    assert len(anomalies) == 80  # 0.4 % of 20,000
    assert {r["anomaly_kind"] for r in anomalies} == {"spike", "jump"}
    assert all(r["anomaly_kind"] is None for r in records if not r["is_fraud"])


def test_rows_span_45_days_to_the_end_date(records: list[dict[str, object]]) -> None:
    days = {str(r["transaction_date"])[:10] for r in records}
    assert min(days) == "2026-05-17"
    assert max(days) == "2026-06-30"
    assert all(str(r["transaction_date"]).endswith("+00:00") for r in records)
    assert all(float(str(r["amount"])) >= 0.01 for r in records)


def test_true_p_in_unit_interval(records: list[dict[str, object]]) -> None:
    values = [float(str(r["true_p"])) for r in records]
    assert all(0.0 < p <= 1.0 for p in values)


def test_true_p_falls_as_the_amount_grows_within_a_merchant() -> None:
    rows = generate(3, 20_000, END)
    for row in rows[::50]:
        # The row's own moment (its level), many amounts: the oracle is a survival
        # function, so it never rises with the amount.
        values = [
            row.merchant.shape.survival(row.amount * f, row.level)
            for f in (0.25, 0.5, 1, 1.01, 2, 4, 8, 16)
        ]
        assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values))
    assert len({row.merchant.name for row in rows}) > 40


def test_jumps_are_beyond_every_fixed_price(records: list[dict[str, object]]) -> None:
    jumps = [r for r in records if r["anomaly_kind"] == "jump"]
    assert jumps
    assert all(r["shape"] == "fixed" and float(str(r["true_p"])) < 1e-9 for r in jumps)


@pytest.mark.parametrize(
    ("a", "x", "expected"),
    [(1.0, 5.0, math.exp(-5.0)), (2.0, 3.0, 4 * math.exp(-3.0)), (3.0, 0.5, 0.9856123220)],
)
def test_gamma_q_closed_forms(a: float, x: float, expected: float) -> None:
    assert gamma_q(a, x) == pytest.approx(expected, rel=1e-9)


def test_beta_sf_closed_form() -> None:
    # Beta(3, 2): I_x = 4x^3 - 3x^4.
    for x in (0.05, 0.3, 0.6, 0.95):
        assert beta_sf(3.0, 2.0, x) == pytest.approx(1 - (4 * x**3 - 3 * x**4), rel=1e-9)


@pytest.mark.parametrize(
    "shape",
    [
        Continuous("power_law", (5.0, 100.0, 2.2)),
        Continuous("gamma", (2.5, 20.0)),
        Continuous("multimodal", (0.6, 6.0, 3.0, 0.4, 5.0, 12.0)),
        Continuous("bounded", (3.0, 2.0, 16.0)),
        Continuous("metered", (3.0, 2.0, 1.3, 6.0)),
    ],
)
def test_survival_matches_samples(shape: Continuous) -> None:
    sample = shape.sample(np.random.default_rng(0), 200_000)
    for q in (0.5, 0.9, 0.99):
        x = float(np.quantile(sample, q))
        assert shape.sf(x) == pytest.approx(1 - q, abs=0.004)
    assert shape.mean() == pytest.approx(float(sample.mean()), rel=0.03)


def test_discrete_step() -> None:
    toll = Discrete((3.5, 8.75, 14.0), (0.82, 0.13, 0.05), fixed_price=True)
    assert toll.survival(3.5, 1.0) == 1.0
    assert toll.survival(3.51, 1.0) == pytest.approx(0.18)
    assert toll.survival(14.01, 1.0) == 0.0
    assert toll.top(1.5) == 21.0


def test_cli_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    main(["--seed", "2", "--out", str(out), "--transactions", "3000", "--end", "2026-06-30"])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3000
    assert {"id", "amount", "currency", "category", "merchant", "transaction_date"} <= set(lines[0])


def test_explain_counts_false_alerts_and_misses(tmp_path: Path) -> None:
    stream = tmp_path / "s.jsonl"
    main(["--seed", "4", "--out", str(stream), "--transactions", "20000", "--end", "2026-06-30"])
    rows = [json.loads(line) for line in stream.read_text().splitlines()]
    late = [r for r in rows if r["transaction_date"] >= "2026-06-25"]  # evaluated days
    normal = next(r for r in late if not r["is_fraud"])
    anomalies = [r for r in late if r["is_fraud"]]
    alerts = tmp_path / "alerts.jsonl"
    verdict = {"severity": "high", "rule": "tail", "tail_probability": 1e-5}
    alerts.write_text(
        "\n".join(
            json.dumps({"method": "tail", "transaction": {"id": r["id"]}, "verdict": verdict})
            for r in [normal, anomalies[0]]
        )
        + "\n"
    )
    text = explain([(alerts, stream)])
    assert "### 1 high+ false alerts" in text
    total = next(line for line in text.splitlines() if line.startswith("| all |"))
    cells = [cell.strip() for cell in total.split("|")[1:-1]]
    assert cells[2] == "1"  # high+ false
    assert cells[5] == "1"  # caught
    assert f"### {int(cells[4]) - 1} missed anomalies" in text
