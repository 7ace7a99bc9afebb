"""Per-family accuracy of a scoring method against the oracle, on streams it was not built on.

    .venv/bin/python -m benchmarks.family_accuracy --seeds 7 8 9 --volume 1.0

What it does: for each seed, generates a labelled stream (benchmarks/streams.py: 8 amount
families, drift, small and late merchants), hands it to each method's replay, and pools the
scored records of every seed per family. Per family and method it reports recall at matched
false-alert rates next to the oracle's (and their ratio), calibration of each tier (observed
false alerts at the tier or above ÷ its nominal rate, with counts and a 95 % interval), and
precision / recall / false alerts per 10k at high+ and medium+; then, leave-one-family-out,
which of the methods given is chosen on all families but one, and how it does on that one.
The "all families" row pools every family under one threshold, as one global tier does: a
score whose meaning depends on the family's shape loses recall there. The method `oracle`
is the limit: its tiers come from the true tail probability (calibrated by construction; a
fixed price, being discrete, never reaches a tier with normal charges).

A method is a `Replay`: any function from (stream, the moment evaluation starts) to
(item, severity, continuous score) triples for the evaluated items, so a new scorer plugs in
without this module knowing it. `config_replay(config)` runs the real scorer with one
`ScoringConfig` through `benchmarks.accuracy.replay` (production's rollup, tail fit and
no-poisoning policy, hourly recomputes).
"""

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

# One table and JSON format for both accuracy reports.
from benchmarks.accuracy import _jsonable, _table, fmt, replay
from benchmarks.evaluate import (
    FA_RATES,
    HeldOut,
    ScoredRecord,
    at_severity,
    by_family,
    calibration,
    leave_one_family_out,
    matched_recall,
    min_share_of_oracle,
    nominal_rate,
    severity_of,
    z_equivalent,
)
from benchmarks.replay import WINDOW_DAYS
from benchmarks.streams import StreamConfig, StreamItem, generate_stream, record_of
from benchmarks.world import DEFAULT_FAMILIES, FAMILIES, HOLDOUT_FAMILIES, WorldConfig
from detector_worker.scoring import SEED_STRICT_TIERS, SEED_TIERS, ScoringConfig, Tiers
from schemas import Verdict

Replay = Callable[[Sequence[StreamItem], datetime], Iterable[tuple[StreamItem, str | None, float]]]
# Each method at its own defaults: `tail` at production's, the seed's z-scores at the seed's
# sigma tiers. The oracle uses production's tiers on the true tail probability.
CONFIGS: dict[str, ScoringConfig] = {
    "tail": ScoringConfig(),
    **{
        method: ScoringConfig(method=method, tiers=SEED_TIERS, strict_tiers=SEED_STRICT_TIERS)
        for method in ("zscore", "log_zscore")
    },
}
METHODS = ("oracle", *CONFIGS)
ALL = "all families"


def thresholds(tiers: Tiers) -> tuple[tuple[str, float], ...]:
    return (("medium", tiers.medium), ("high", tiers.high), ("critical", tiers.critical))


def nominal_tiers(method: str) -> tuple[tuple[str, float], ...]:
    """A method's tiers as the nominal rates calibration checks them against."""
    tiers = CONFIGS.get(method, CONFIGS["tail"]).active_tiers
    return tuple((tier, nominal_rate(z)) for tier, z in thresholds(tiers))


Z_THRESHOLDS = thresholds(CONFIGS["tail"].active_tiers)
Z_TIERS = nominal_tiers("tail")


def verdict_score(verdict: Verdict) -> float:
    """The current scorer's continuous score: its z; the low-variance rule, which has none,
    ranks above every z when it fires and below every z when it does not."""
    if verdict.z_score is not None:
        return verdict.z_score
    return math.inf if verdict.anomaly else -math.inf


def config_replay(config: ScoringConfig) -> Replay:
    """`benchmarks.accuracy.replay` (production's rollup, fit and scorer) with `config`."""

    def run(
        stream: Sequence[StreamItem], scored_from: datetime
    ) -> Iterator[tuple[StreamItem, str | None, float]]:
        for outcome in replay(stream, config, scored_from, WINDOW_DAYS):
            assert isinstance(outcome.item, StreamItem)
            verdict = outcome.verdict
            yield outcome.item, verdict.severity, verdict_score(verdict)

    return run


def oracle_replay(
    stream: Sequence[StreamItem], scored_from: datetime
) -> Iterator[tuple[StreamItem, str | None, float]]:
    """The limit: tiers and score from the true tail probability of every transaction."""
    for item in stream:
        if item.transaction.transaction_date >= scored_from:
            z = z_equivalent(item.p_true)
            yield item, severity_of(z, Z_THRESHOLDS), z


def replay_of(method: str) -> Replay:
    return oracle_replay if method == "oracle" else config_replay(CONFIGS[method])


def collect(
    replay_method: Replay, seeds: Sequence[int], config: StreamConfig
) -> list[ScoredRecord]:
    """The evaluated records of every seed, pooled."""
    records: list[ScoredRecord] = []
    for seed in seeds:
        stream = generate_stream(seed, config)
        scored = replay_method(stream, config.scored_from())
        records += [record_of(item, severity, score) for item, severity, score in scored]
        print(f"  seed {seed}: {len(stream)} transactions replayed", file=sys.stderr)
    return records


def figures(
    records: Sequence[ScoredRecord], tiers: Sequence[tuple[str, float]] = Z_TIERS
) -> dict[str, float]:
    """Every figure of one family (or of all) under a stable name: what the JSON stores."""
    flat: dict[str, float] = {
        "normal": sum(not r.is_anomaly for r in records),
        "anomalies": sum(r.is_anomaly for r in records),
    }
    for matched in matched_recall(records, FA_RATES):
        rate = f"{matched.method.rate_per_10k:g}"
        flat[f"allowed@{rate}"] = matched.method.allowed  # how coarse the rate is here
        flat[f"recall@{rate}"] = matched.method.recall
        flat[f"oracle@{rate}"] = matched.oracle.recall
        flat[f"share_of_oracle@{rate}"] = matched.share_of_oracle
    for tier in calibration(records, tiers):
        flat[f"calibration.{tier.tier}"] = tier.ratio
        flat[f"calibration.{tier.tier}.low"], flat[f"calibration.{tier.tier}.high"] = tier.interval
        flat[f"false_alerts.{tier.tier}"] = tier.false_alerts
        flat[f"expected.{tier.tier}"] = tier.expected
    for floor in ("high", "medium"):
        counts = at_severity(records, floor)
        flat[f"{floor}+.precision"] = counts.precision
        flat[f"{floor}+.recall"] = counts.recall
        flat[f"{floor}+.false_alerts_per_10k"] = counts.false_alerts_per_10k
    return flat


def per_family(
    records: Sequence[ScoredRecord], tiers: Sequence[tuple[str, float]] = Z_TIERS
) -> dict[str, dict[str, float]]:
    """`figures` of each family, and of all of them pooled under `ALL`."""
    table = {family: figures(rs, tiers) for family, rs in sorted(by_family(records).items())}
    table[ALL] = figures(records, tiers)
    return table


def held_out_choice(
    records: Mapping[str, Sequence[ScoredRecord]], rate_per_10k: float = 5.0
) -> list[HeldOut[str, dict[str, float]]]:
    """Leave-one-family-out over the methods (or settings) given: each held-out family gets
    the candidate whose worst family, among the others, comes closest to the oracle's recall
    at `rate_per_10k`, and that candidate's figures on the held-out family."""
    grouped = {method: by_family(rs) for method, rs in records.items() if method != "oracle"}
    found = {family for table in grouped.values() for family in table}
    families = sorted(found - set(HOLDOUT_FAMILIES))  # hold-outs report, never choose
    return leave_one_family_out(
        families,
        list(grouped),
        lambda method, others: min_share_of_oracle(grouped[method], others, rate_per_10k),
        lambda method, family: figures(grouped[method].get(family, [])),
    )


def held_out_markdown(held: Sequence[HeldOut[str, dict[str, float]]]) -> str:
    rows = [["held-out family", "chosen on the others", "recall @5/10k (oracle)", "high+ FA / 10k"]]
    for h in held:
        f = h.report
        recall = f"{fmt(f['recall@5'])} ({fmt(f['oracle@5'])})"
        rows.append([h.family, h.chosen, recall, fmt(f["high+.false_alerts_per_10k"], 1)])
    return _table(rows)


def markdown(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Two tables: recall against the oracle, then calibration and the defaults."""
    rates = [f"{r:g}" for r in FA_RATES]
    tiers = [tier for tier, _ in Z_TIERS]
    recall = [["family", "method", *(f"recall @{r}/10k (oracle)" for r in rates)]]
    at_floor = [f"{s}+ P / R / FA per 10k" for s in ("high", "medium")]
    defaults = [["family", "method", *(f"{t}+: FA / expected" for t in tiers), *at_floor]]
    for method, table in results.items():
        for family, f in table.items():
            row = [family, method]
            recall.append(
                [*row, *(f"{fmt(f[f'recall@{r}'])} ({fmt(f[f'oracle@{r}'])})" for r in rates)]
            )
            calib = [f"{f[f'false_alerts.{t}']:.0f} / {f[f'expected.{t}']:.2g}" for t in tiers]
            severity = [
                f"{fmt(f[f'{s}+.precision'])} / {fmt(f[f'{s}+.recall'])} / "
                f"{fmt(f[f'{s}+.false_alerts_per_10k'], 1)}"
                for s in ("high", "medium")
            ]
            defaults.append([*row, *calib, *severity])
    return "\n\n".join(_table(rows) for rows in (recall, defaults))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--volume", type=float, default=1.0, help="x ~3,000 transactions a day")
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument(
        "--families", nargs="+", default=list(DEFAULT_FAMILIES), choices=sorted(FAMILIES)
    )
    parser.add_argument("--evaluated-days", type=int, default=7, help="the last days, scored")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="oracle (the limit), tail (production), zscore and log_zscore (the seed's tiers)",
    )
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/families.json"))
    args = parser.parse_args(argv)
    world = WorldConfig(days=args.days, volume=args.volume, families=tuple(args.families))
    config = StreamConfig(world=world, anomaly_from_day=args.days - args.evaluated_days)
    records = {method: collect(replay_of(method), args.seeds, config) for method in args.methods}
    results = {method: per_family(rs, nominal_tiers(method)) for method, rs in records.items()}
    held = held_out_choice(records)
    print(markdown(results))
    print("\n" + held_out_markdown(held))
    report = {
        "command": " ".join(["python -m benchmarks.family_accuracy", *sys.argv[1:]]),
        "seeds": args.seeds,
        "volume": args.volume,
        "days": args.days,
        "families": args.families,
        "evaluated_days": args.evaluated_days,
        "results": results,
        "leave_one_family_out": [
            {"family": h.family, "chosen": h.chosen, "figures": h.report} for h in held
        ],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_jsonable(report), indent=2) + "\n")


if __name__ == "__main__":
    main()
