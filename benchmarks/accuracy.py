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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from baseline_worker.compute import ScopeStats, window_days
from baseline_worker.recompute import to_baseline
from baseline_worker.stats import Moments
from benchmarks.generator import AnomalyKind, LabelledTransaction, StreamConfig, generate
from benchmarks.support import index
from detector_worker.held_baseline import HeldBaseline, ScopeKey
from detector_worker.scoring import ScoringConfig, score
from schemas import Baseline, BaselineScope, ScopeKind, Severity, Transaction, Verdict

WINDOW_DAYS = 30
WARMUP_DAYS = 30
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
CONFIGS = tuple(
    ScoringConfig(method=method, strict_mode=strict)
    for method in ("zscore", "log_zscore")
    for strict in (False, True)
)


def scopes_of(txn: Transaction) -> tuple[BaselineScope, BaselineScope]:
    return (
        BaselineScope(kind=ScopeKind.CATEGORY, name=txn.category, currency=txn.currency),
        BaselineScope(kind=ScopeKind.MERCHANT, name=txn.merchant, currency=txn.currency),
    )


class Rollup:
    """The `baseline_rollup` table in memory: per UTC day and scope, the Moments of the
    transactions let into the baselines."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._days: defaultdict[date, dict[BaselineScope, Moments]] = defaultdict(dict)
        # Sum of the window's closed days, kept for the day it was made for: the stream is in
        # time order, so a past day never changes again and only today needs adding each time.
        self._closed: tuple[date, dict[BaselineScope, Moments]] | None = None

    def add(self, txn: Transaction) -> None:
        day = self._days[txn.transaction_date.date()]
        sample = Moments.of(txn.amount)
        for scope in scopes_of(txn):
            day[scope] = day.get(scope, Moments()) + sample

    def baselines(self, now: datetime) -> "WindowBaselines":
        """What a recompute at `now` publishes."""
        first, today = window_days(now, self._window)
        if self._closed is None or self._closed[0] != today:
            closed_days = (self._days[d] for d in self._days if first <= d < today)
            self._closed = (today, _sum_days(closed_days))
        # A copy: today's sums go on growing after this recompute.
        partial = dict(self._days.get(today, {}))
        return WindowBaselines(self._closed[1], partial, self._window, now)


class WindowBaselines(Mapping[BaselineScope, Baseline]):
    """The baselines of one recompute, each built on first look-up (within an hour most
    scopes are never looked up). A scope without samples is absent, as a tombstone makes it."""

    def __init__(
        self,
        closed: Mapping[BaselineScope, Moments],
        today: Mapping[BaselineScope, Moments],
        window: int,
        now: datetime,
    ) -> None:
        self._closed, self._today, self._window, self._now = closed, today, window, now
        self._built: dict[BaselineScope, Baseline] = {}

    def __getitem__(self, scope: BaselineScope) -> Baseline:
        if scope not in self._built:
            moments = self._closed.get(scope, Moments()) + self._today.get(scope, Moments())
            if moments.count == 0:
                raise KeyError(scope)
            self._built[scope] = to_baseline(ScopeStats(scope, moments), self._window, self._now)
        return self._built[scope]

    def __iter__(self) -> Iterator[BaselineScope]:
        scopes = {*self._closed, *self._today}
        return (scope for scope in scopes if scope in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _sum_days(days: Iterable[Mapping[BaselineScope, Moments]]) -> dict[BaselineScope, Moments]:
    totals: dict[BaselineScope, Moments] = {}
    for day in days:
        for scope, moments in day.items():
            totals[scope] = totals.get(scope, Moments()) + moments
    return totals


# Which scored transactions enter the rollup. Production (migration 005) leaves out those
# judged high or critical; the others measure alternatives (see docs/accuracy.md).
RollupPolicy = Callable[[Verdict], bool]
POLICIES: dict[str, RollupPolicy] = {
    "production": lambda verdict: verdict.severity not in ("high", "critical"),
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
    keeps: RollupPolicy = POLICIES["production"],
) -> list[Scored]:
    """Score every transaction in order; return the verdicts from `scored_from` on."""
    rollup = Rollup(window)
    baselines: Mapping[ScopeKey, HeldBaseline] = {}
    next_recompute: datetime | None = None
    scored: list[Scored] = []
    for item in stream:
        at = item.transaction.transaction_date
        if next_recompute is None or at >= next_recompute:
            hour = at.replace(minute=0, second=0, microsecond=0)
            baselines = index(rollup.baselines(hour).values())
            next_recompute = hour + timedelta(hours=1)
        verdict = score(item.transaction, baselines, config, at)
        if keeps(verdict):
            rollup.add(item.transaction)
        if at >= scored_from:
            scored.append(Scored(item, verdict))
    return scored


def ratio(part: float, whole: float) -> float:
    """part / whole, NaN when there is nothing to divide (shown as "-", stored as null)."""
    return part / whole if whole else math.nan


@dataclass(frozen=True)
class Metrics:
    true_positives: int
    false_positives: int
    false_negatives: int
    normal: int  # normal transactions scored, drifting ones included
    alerts: Mapping[Severity, int]
    true_alerts: Mapping[Severity, int]
    caught: Mapping[AnomalyKind, int]
    labelled: Mapping[AnomalyKind, int]
    drift_flagged: int
    drift_total: int

    @property
    def precision(self) -> float:
        return ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        return ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float:
        return ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )

    @property
    def false_alerts_per_10k(self) -> float:
        return 10_000 * ratio(self.false_positives, self.normal)

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
