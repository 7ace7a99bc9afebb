"""The choice of the tail's defaults never reads a hold-out family, and reports them apart."""

from benchmarks.tail_choice import choice_families, held_out, tables
from benchmarks.world import DEFAULT_FAMILIES, HOLDOUT_FAMILIES


def _figures(share: float, high_fa: float = 1.0) -> dict[str, float]:
    figures = {"high+.false_alerts_per_10k": high_fa, "high+.precision": 0.9}
    figures |= {"high+.recall": 0.5, "calibration.medium": 1.0, "calibration.high": 1.0}
    for rate in ("2", "5", "13"):
        figures |= {f"recall@{rate}": share, f"oracle@{rate}": 1.0}
    return figures


def _results(
    on_old: dict[str, float], on_holdouts: dict[str, float]
) -> dict[str, dict[str, dict[str, float]]]:
    return {
        name: {
            **{family: _figures(on_old[name]) for family in DEFAULT_FAMILIES},
            **{family: _figures(on_holdouts[name]) for family in HOLDOUT_FAMILIES},
        }
        for name in on_old
    }


def test_choice_families_leave_every_hold_out_out() -> None:
    families = [*DEFAULT_FAMILIES, *HOLDOUT_FAMILIES]
    assert choice_families(families) == sorted(DEFAULT_FAMILIES)
    assert len(HOLDOUT_FAMILIES) >= 3
    assert not set(HOLDOUT_FAMILIES) & set(DEFAULT_FAMILIES)


def test_a_candidate_better_only_on_the_hold_outs_is_not_chosen() -> None:
    results = _results({"old": 0.9, "fits_holdouts": 0.8}, {"old": 0.1, "fits_holdouts": 1.0})
    _, report = held_out(results)
    assert {row["family"] for row in report} == set(DEFAULT_FAMILIES)
    assert {row["chosen"] for row in report} == {"old"}


def test_the_hold_outs_get_a_table_of_their_own() -> None:
    text, _ = tables(_results({"old": 0.9}, {"old": 0.5}))
    assert "hold-out family" in text
    for family in HOLDOUT_FAMILIES:
        assert f"| {family} | old | 0.50 / 0.50 / 0.50 |" in text
