"""Detection accuracy of the real scorer on labelled synthetic streams.

    .venv/bin/python -m benchmarks.accuracy --days 60 --seed 7 --runs 3 --per-day 1000

Each stream (benchmarks/generator.py) is replayed in time order through
`detector_worker.scoring.score`, once per method (zscore, log_zscore) and strict mode (off,
on). Baselines are built the way production builds them: daily `Moments` per scope
(category and merchant, per currency) by the UTC day of `transaction_date`, summed over the
window of whole UTC days that `baseline_worker.compute.window_days` gives (today, partial,
and the 29 before), turned into a `Baseline` by the baseline worker's own `to_baseline`.
Transactions the scorer judged high or critical never enter the rollup (production's no-poisoning
policy). Production recomputes every 60 s; the replay recomputes at every UTC hour, which
changes a baseline by at most one hour of data. The first `--warmup-days` (30) fill the
window and are scored (they feed the rollup) but not counted; anomalies are only generated
after them. Reported per configuration: the median over `--runs` seeds.
"""

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from benchmarks.evaluate import AlertCounts, ratio
from benchmarks.generator import AnomalyKind, LabelledTransaction, StreamConfig, generate
from benchmarks.replay import WINDOW_DAYS, RollupPolicy, production_policy
from benchmarks.replay import replay as event_time_replay
from detector_worker.scoring import SEED_STRICT_TIERS, SEED_TIERS, ScoringConfig
from schemas import Severity, Verdict

WARMUP_DAYS = 30
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
CONFIGS = (
    *(
        ScoringConfig(
            method=method, tiers=SEED_TIERS, strict_tiers=SEED_STRICT_TIERS, strict_mode=strict
        )
        for method in ("zscore", "log_zscore")
        for strict in (False, True)
    ),
    ScoringConfig(),
    ScoringConfig(strict_mode=True),
)


# Which scored transactions enter the rollup. Production (migration 005) leaves out those
# judged high or critical; the others measure alternatives (see docs/accuracy.md).
POLICIES: dict[str, RollupPolicy] = {
    "production": production_policy,
    "unflagged-only": lambda verdict: not verdict.anomaly,
    "everything": lambda _verdict: True,
}


@dataclass(frozen=True)
class Scored:
    item: LabelledTransaction
    verdict: Verdict


def replay(
    stream: Iterable[LabelledTransaction],
    config: ScoringConfig,
    scored_from: datetime,
    window: int = WINDOW_DAYS,
    keeps: RollupPolicy = production_policy,
) -> list[Scored]:
    """Score every transaction in order; return the verdicts from `scored_from` on."""
    items = list(stream)
    verdicts = event_time_replay(
        (item.transaction for item in items), config, window_days=window, keeps=keeps
    )
    return [
        Scored(item, verdict)
        for item, (_, verdict) in zip(items, verdicts, strict=True)
        if item.transaction.transaction_date >= scored_from
    ]


@dataclass(frozen=True)
class Metrics(AlertCounts):
    """Alerts of any severity; `normal` counts drifting transactions too."""

    alerts: Mapping[Severity, int]
    true_alerts: Mapping[Severity, int]
    caught: Mapping[AnomalyKind, int]
    labelled: Mapping[AnomalyKind, int]
    drift_flagged: int
    drift_total: int

    @property
    def f1(self) -> float:
        return ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )

    def flat(self) -> dict[str, float]:
        """Every figure under a stable name: what the JSON stores and seeds are medianed on."""
        figures: dict[str, float] = {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "false_alerts_per_10k": self.false_alerts_per_10k,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "normal": self.normal,
            "drift_flagged": self.drift_flagged,
            "drift_total": self.drift_total,
        }
        for severity in SEVERITIES:
            figures[f"{severity}.alerts"] = self.alerts[severity]
            figures[f"{severity}.precision"] = ratio(
                self.true_alerts[severity], self.alerts[severity]
            )
        for kind in AnomalyKind:
            figures[f"recall.{kind}"] = ratio(self.caught[kind], self.labelled[kind])
            figures[f"labelled.{kind}"] = self.labelled[kind]
        return figures


def evaluate(outcomes: Iterable[Scored]) -> Metrics:
    """A labelled anomaly with an alert of any severity is a true positive; any alert on a
    normal transaction (drifting ones included) is a false positive."""
    counts: defaultdict[str, int] = defaultdict(int)
    alerts: dict[Severity, int] = dict.fromkeys(SEVERITIES, 0)
    true_alerts: dict[Severity, int] = dict.fromkeys(SEVERITIES, 0)
    caught: dict[AnomalyKind, int] = dict.fromkeys(AnomalyKind, 0)
    labelled: dict[AnomalyKind, int] = dict.fromkeys(AnomalyKind, 0)
    for outcome in outcomes:
        kind, verdict = outcome.item.anomaly, outcome.verdict
        flagged = verdict.anomaly
        if verdict.severity is not None:
            alerts[verdict.severity] += 1
            true_alerts[verdict.severity] += kind is not None
        if kind is not None:
            labelled[kind] += 1
            caught[kind] += flagged
            counts["tp" if flagged else "fn"] += 1
        else:
            counts["normal"] += 1
            counts["fp"] += flagged
            counts["drift_total"] += outcome.item.drifting
            counts["drift_flagged"] += outcome.item.drifting and flagged
    return Metrics(
        counts["tp"],
        counts["fp"],
        counts["fn"],
        counts["normal"],
        alerts,
        true_alerts,
        caught,
        labelled,
        counts["drift_flagged"],
        counts["drift_total"],
    )


def median(values: Sequence[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else math.nan


def label(config: ScoringConfig) -> str:
    return f"{config.method}, strict {'on' if config.strict_mode else 'off'}"


def run(
    days: int, per_day: int, seeds: Sequence[int], warmup: int, policy: str = "production"
) -> list[dict[str, Any]]:
    """Per configuration: its per-seed figures and their medians."""
    stream_config = StreamConfig(
        days=days, per_day=per_day, anomaly_from_day=warmup, drift_from_day=max(0, warmup - 10)
    )
    per_seed: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for seed in seeds:
        stream = generate(seed, stream_config)
        scored_from = stream_config.day_start(warmup)
        for config in CONFIGS:
            per_seed[label(config)][seed] = evaluate(
                replay(stream, config, scored_from, keeps=POLICIES[policy])
            ).flat()
            print(f"  seed {seed}: {label(config)} done", file=sys.stderr)
    return [summarise(config, per_seed[label(config)]) for config in CONFIGS]


def summarise(config: ScoringConfig, runs: Mapping[int, Mapping[str, float]]) -> dict[str, Any]:
    """One configuration's result: the median of every figure, the F1 range, each seed's."""
    seeds = list(runs.values())
    f1s = [figures["f1"] for figures in seeds]
    return {
        "method": config.method,
        "strict_mode": config.strict_mode,
        "median": {name: median([figures[name] for figures in seeds]) for name in seeds[0]},
        "f1_range": [min(f1s), max(f1s)],
        "per_seed": {seed: dict(figures) for seed, figures in runs.items()},
    }


def fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """Three tables of medians: overall, alerts per severity, recall per anomaly kind."""
    head = ["method", "strict"]
    overall = [
        [
            *head,
            "precision",
            "recall",
            "F1 (min-max)",
            "false alerts / 10k normal",
            "drift flagged",
        ],
    ]
    severity = [[*head, *(f"{s}: alerts (precision)" for s in SEVERITIES)]]
    kinds = [[*head, *(f"{k} (n)" for k in AnomalyKind)]]
    for result in results:
        m = result["median"]
        row = [result["method"], "on" if result["strict_mode"] else "off"]
        low, high = result["f1_range"]
        overall.append(
            [
                *row,
                fmt(m["precision"]),
                fmt(m["recall"]),
                f"{fmt(m['f1'])} ({fmt(low)}-{fmt(high)})",
                fmt(m["false_alerts_per_10k"], 1),
                f"{m['drift_flagged']:.0f} / {m['drift_total']:.0f}",
            ]
        )
        severity.append(
            [*row, *(f"{m[f'{s}.alerts']:.0f} ({fmt(m[f'{s}.precision'])})" for s in SEVERITIES)]
        )
        kinds.append(
            [*row, *(f"{fmt(m[f'recall.{k}'])} ({m[f'labelled.{k}']:.0f})" for k in AnomalyKind)]
        )
    return "\n\n".join(_table(rows) for rows in (overall, severity, kinds))


def _table(rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    """NaN is not JSON: store it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7, help="first seed")
    parser.add_argument("--runs", type=int, default=3, help="seeds seed, seed+1, ...")
    parser.add_argument("--per-day", type=int, default=1000, help="normal transactions a day")
    parser.add_argument("--warmup-days", type=int, default=WARMUP_DAYS)
    parser.add_argument(
        "--rollup",
        choices=sorted(POLICIES),
        default="production",
        help="which scored transactions feed the baselines (production: those not flagged)",
    )
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/accuracy.json"))
    args = parser.parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.runs))
    results = run(args.days, args.per_day, seeds, args.warmup_days, args.rollup)
    print(markdown(results))
    report = {
        "command": " ".join(["python -m benchmarks.accuracy", *sys.argv[1:]]),
        "days": args.days,
        "per_day": args.per_day,
        "seeds": seeds,
        "warmup_days": args.warmup_days,
        "window_days": WINDOW_DAYS,
        "recompute": "hourly",
        "rollup": args.rollup,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_jsonable(report), indent=2) + "\n")


if __name__ == "__main__":
    main()
