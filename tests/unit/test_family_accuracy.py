"""The per-family report: any replay plugs in, the oracle stands beside every method, and a
small run writes its tables and JSON."""

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from benchmarks.family_accuracy import (
    ALL,
    collect,
    figures,
    held_out_choice,
    main,
    oracle_replay,
    per_family,
    verdict_score,
)
from benchmarks.streams import StreamConfig
from benchmarks.world import DEFAULT_FAMILIES, WorldConfig
from schemas import Verdict

# Anomalies at 20 %: every family gets some, even in a stream this short.
SMALL = StreamConfig(world=WorldConfig(days=6, volume=0.05), anomaly_from_day=4, anomaly_share=0.2)


def test_a_method_that_knows_the_truth_reaches_the_oracle_in_every_family() -> None:
    table = per_family(collect(oracle_replay, [3], SMALL))
    assert ALL in table
    assert len(table) == 9
    for family in table.values():
        assert family["anomalies"] > 0
        for rate in ("2", "5", "13"):
            assert family[f"recall@{rate}"] == family[f"oracle@{rate}"]


def test_figures_name_every_rate_tier_and_floor() -> None:
    records = collect(oracle_replay, [3], SMALL)
    names = set(figures(records))
    assert {"recall@5", "oracle@5", "share_of_oracle@5", "calibration.high"} <= names
    assert {"false_alerts.critical", "expected.medium", "high+.precision"} <= names
    assert "medium+.false_alerts_per_10k" in names


def test_the_low_variance_rule_ranks_above_every_z_when_it_fires() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    txn_id = uuid4()
    fired = Verdict(transaction_id=txn_id, anomaly=True, severity="high", scored_at=now)
    quiet = Verdict(transaction_id=txn_id, anomaly=False, scored_at=now)
    with_z = Verdict(transaction_id=txn_id, anomaly=False, z_score=1.5, scored_at=now)
    assert (verdict_score(fired), verdict_score(quiet)) == (math.inf, -math.inf)
    assert verdict_score(with_z) == 1.5


def test_a_small_run_prints_both_tables_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "families.json"
    sizes = ["--seeds", "1", "--volume", "0.02", "--days", "5", "--evaluated-days", "2"]
    main([*sizes, "--methods", "log_zscore", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "recall @5/10k (oracle)" in printed
    assert "high+: FA / expected" in printed
    report = json.loads(out.read_text())
    assert set(report["results"]["log_zscore"]) >= {ALL}


def test_leave_one_family_out_picks_the_candidate_closest_to_the_oracle() -> None:
    truth = collect(oracle_replay, [3], SMALL)
    # A candidate whose score is noise: it knows nothing of rarity.
    blind = [replace(r, score=float(int(r.p_true * 1e6) % 7)) for r in truth]
    held = held_out_choice(
        {"oracle": truth, "blind": blind, "truth": truth}
    )  # blind first: ties pick it
    assert {h.chosen for h in held} == {"truth"}
    assert len(held) == 8
    assert all(h.report["recall@5"] == h.report["oracle@5"] for h in held)


def test_a_hold_out_family_never_takes_part_in_the_choice() -> None:
    """Where a candidate is perfect only on a hold-out family, the choice does not see it."""
    holdouts = replace(SMALL, world=replace(SMALL.world, families=("burr", "price_list")))
    truth = collect(oracle_replay, [3], SMALL)
    held_truth = collect(oracle_replay, [3], holdouts)
    blind = [replace(r, score=float(int(r.p_true * 1e6) % 7)) for r in truth]
    held = held_out_choice(
        {
            "oracle": truth,
            "blind": blind + held_truth,
            "truth": truth + [replace(r, score=-r.score) for r in held_truth],
        }
    )
    assert {h.family for h in held} == set(DEFAULT_FAMILIES)
    assert {h.chosen for h in held} == {"truth"}
