"""Backtest the scorer on your own history, in event time.

    jalytics-backtest transactions.jsonl --label-column is_fraud --png backtest.png
    jalytics-backtest history.csv --method tail log_zscore zscore --tiers seed

Each row (JSON lines, or CSV with a header) is a transaction: `amount`, `category`,
`merchant`, `transaction_date` (ISO 8601 with a time zone), optional `currency` (USD) and
`id`; other columns are ignored but the label (`--label-column`: true/1/yes is an anomaly)
and the oracle (`--oracle-column`: a known true tail probability, as the accuracy
benchmark's streams carry). Rows that do not validate are counted and reported, never fatal.

The rows are replayed in time order through the real scorer with baselines recomputed as
event time passes (`benchmarks.replay`: the baseline worker's own arithmetic, checked
against the SQL rollup by tests/integration/test_baselines.py). Replaying the file through
the live system cannot show this: there the baselines are recomputed on the wall clock
and the rows stored, not at each hour of event time. The first
`--warmup-days` fill the baselines and are not counted. `--workers N` (default: the CPUs)
replays independent groups of scopes in N processes, to the same report
(`benchmarks.parallel_replay`).

Printed per method: alerts per tier, and with labels precision, recall and false alerts per
10,000 normal transactions at each tier, and recall at matched false-alert rates (2, 5, 13
per 10k; the oracle's too when given). `--by COLUMN` (a transaction field such as
`category`, or any other column of the file) adds the same per value of that column: where
the alerts, and the false ones, come from. `--png` draws recall against false alerts per 10k for
each method (and the oracle); `--alerts` writes every alert as a JSON line.

`--history-unscored` scores the warm-up rows without any baseline, as the live system
scores a history posted faster than its first baselines are computed (a backfill, a file
replayed through `make up`): they all feed the baselines unjudged. An event-time proxy for
`benchmarks.live_replay` that needs no running system (docs/accuracy.md, round 14).
"""

import argparse
import csv
import gc
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID, uuid4

from pydantic import ConfigDict, Field, ValidationError, create_model
from tqdm import tqdm

from benchmarks.evaluate import (
    FA_RATES,
    AlertCounts,
    Score,
    ScoredRecord,
    at_severity,
    group_by,
    method_score,
    oracle_score,
    recall_at_rates,
)
from benchmarks.parallel_replay import replay_scored
from benchmarks.replay import WINDOW_DAYS
from detector_worker.scoring import ScoringConfig, Tiers
from schemas import Transaction, Verdict

TRUE = frozenset({"1", "true", "t", "yes", "y"})
# The `--by` group of a row without a value in that column.
NO_GROUP = "(none)"
# The groups the `--by` table prints (the most alerted first); the JSON holds every one.
BY_TOP = 20
SEVERITIES = ("medium", "high", "critical")
_FIELDS = ("id", "amount", "currency", "category", "merchant", "transaction_date")


@dataclass(frozen=True)
class Row:
    transaction: Transaction
    label: bool | None
    p_true: float
    group: str = ""  # the row's value of the `--by` column


@dataclass
class Loaded:
    rows: list[Row] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)


class _Line(Transaction):
    """A JSON line: a Transaction (validated the same way) that ignores other columns and
    may come without an id. Validated straight from the JSON text (about 3x faster than
    decoding then validating, which is most of reading a large file)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID = Field(default_factory=uuid4)


def _line_model(label: str | None, oracle: str | None, by: str | None = None) -> type[_Line]:
    """`_Line` with the label, oracle and `--by` columns as optional fields (by their names;
    a transaction's own field, `category` say, is read from the transaction)."""
    fields: dict[str, Any] = {}
    if label:
        fields["label_value"] = (Any, Field(default=None, alias=label))
    if oracle:
        fields["oracle_value"] = (float | None, Field(default=None, alias=oracle))
    if by and by not in Transaction.model_fields:
        fields["group_value"] = (Any, Field(default=None, alias=by))
    return create_model("BacktestLine", __base__=_Line, **fields)


def read_rows(path: Path, label: str | None, oracle: str | None, by: str | None = None) -> Loaded:
    """Every row of the file that validates, in time order, and why the others did not;
    with `by`, each row's value of that column (`NO_GROUP` where it has none)."""
    loaded = Loaded()
    with _untracked(), path.open(newline="") as stream:
        lines: Iterator[Row | Exception]
        if path.suffix.lower() == ".csv":
            lines = (_csv_row(raw, label, oracle, by) for raw in csv.DictReader(stream))
        else:
            lines = _json_rows(stream, _line_model(label, oracle, by), label, oracle, by)
        for row in tqdm(lines, desc="reading", unit=" rows", file=sys.stderr):
            if isinstance(row, Exception):
                loaded.rejected[_reason(row)] += 1
            else:
                loaded.rows.append(row)
    loaded.rows.sort(key=attrgetter("transaction.transaction_date"))
    return loaded


@contextmanager
def _untracked() -> Iterator[None]:
    """The cyclic garbage collector off while reading, and what was read then frozen out of
    its reach: a million rows are millions of long-lived objects without a cycle among them,
    and every full collection (while reading, then while replaying) would walk them again."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _json_rows(
    stream: TextIO, model: type[_Line], label: str | None, oracle: str | None, by: str | None
) -> Iterator[Row | Exception]:
    for line in stream:
        if not line.strip():
            continue
        try:
            txn = model.model_validate_json(line)
        except ValidationError as error:
            yield error
            continue
        extra = txn.__dict__
        is_anomaly = None if label is None else _truthy(extra.get("label_value"))
        p_true = extra.get("oracle_value")
        group = ""
        if by:  # read only when asked: this loop is most of reading a large file
            group = _group(extra.get(by if by in Transaction.model_fields else "group_value"))
        yield Row(txn, is_anomaly, math.nan if p_true is None else p_true, group)


def _group(value: object) -> str:
    """A `--by` value as its group's name: a JSON string as it is, a number or a boolean as
    JSON writes it (1.5, true), nothing (absent, null, "") as `NO_GROUP`."""
    if value is None or value == "":
        return NO_GROUP
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in TRUE


def _csv_row(
    raw: dict[str, Any], label: str | None, oracle: str | None, by: str | None
) -> Row | Exception:
    try:
        return _row(raw, label, oracle, by)
    except (ValidationError, ValueError, InvalidOperation, TypeError) as error:
        return error


def _row(raw: dict[str, Any], label: str | None, oracle: str | None, by: str | None) -> Row:
    fields = {name: raw[name] for name in _FIELDS if raw.get(name) not in (None, "")}
    fields.setdefault("id", uuid4())
    fields["amount"] = Decimal(str(fields.get("amount", "")))
    txn = Transaction.model_validate(fields)
    is_anomaly = None if label is None else _truthy(raw.get(label, ""))
    p_true = float(raw[oracle]) if oracle and raw.get(oracle) not in (None, "") else math.nan
    return Row(txn, is_anomaly, p_true, _group(raw.get(by)) if by else "")


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(error) or type(error).__name__


@dataclass(frozen=True)
class MethodRun:
    name: str
    config: ScoringConfig
    records: list[ScoredRecord]
    alerts: Counter[str]


def run_method(
    name: str, config: ScoringConfig, rows: Sequence[Row], counted_from: datetime, args: Any
) -> tuple[MethodRun, list[tuple[Row, Verdict]]]:
    records: list[ScoredRecord] = []
    alerts: Counter[str] = Counter()
    flagged: list[tuple[Row, Verdict]] = []
    tiers = config.active_tiers
    with tqdm(total=len(rows), desc=name, unit=" tx") as progress:
        scored = replay_scored(
            [row.transaction for row in rows],
            config,
            partial(score_of, tiers=tiers),
            args.workers,
            progress,
            window_days=args.window_days,
            recompute_every=timedelta(seconds=args.recompute_every),
            unscored_until=counted_from if args.history_unscored else None,
        )
    for index, row in enumerate(rows):
        if row.transaction.transaction_date < counted_from:
            continue
        severity = scored.severity(index)
        if severity is not None:
            alerts[severity] += 1
            flagged.append((row, scored.flagged[index]))
        records.append(
            ScoredRecord(
                is_anomaly=bool(row.label),
                family="all",
                p_true=row.p_true,
                severity=severity,
                score=scored.scores[index],
                segment=row.group,
            )
        )
    return MethodRun(name, config, records, alerts), flagged


def score_of(verdict: Verdict, tiers: Tiers) -> float:
    """The continuous score the curve ranks by: the z (a z-equivalent for `tail`); a rule
    without one (the fixed-price rule) ranks at its tier's threshold."""
    if verdict.z_score is not None:
        return verdict.z_score
    thresholds = {"medium": tiers.medium, "high": tiers.high, "critical": tiers.critical}
    return thresholds.get(verdict.severity or "", -math.inf)


def report(run: MethodRun, labelled: bool, oracle: bool) -> str:
    tiers = run.config.active_tiers
    lines = [
        f"## {run.name}: tiers medium {tiers.medium:.3g}σ, high {tiers.high:.3g}σ, "
        f"critical {tiers.critical:.3g}σ"
        + (" (z-equivalents of the tail probability)" if run.config.method == "tail" else ""),
        "",
    ]
    if not labelled:
        lines.append("| tier | alerts |")
        lines.append("|---|---:|")
        lines += [f"| {tier} | {run.alerts[tier]:,} |" for tier in SEVERITIES]
        return "\n".join(lines)
    lines.append("| tier or above | alerts | precision | recall | false alerts / 10k normal |")
    lines.append("|---|---:|---:|---:|---:|")
    for tier in SEVERITIES:
        counts = at_severity(run.records, tier)
        alerts = sum(run.alerts[t] for t in SEVERITIES[SEVERITIES.index(tier) :])
        lines.append(
            f"| {tier} | {alerts:,} | {_fmt(counts.precision)} | {_fmt(counts.recall)} | "
            f"{_fmt(counts.false_alerts_per_10k, 1)} |"
        )
    lines += ["", "| false alerts / 10k | recall" + (" | oracle |" if oracle else " |")]
    lines.append("|---:|---:|" + ("---:|" if oracle else ""))
    mine = recall_at_rates(run.records, FA_RATES)
    best = recall_at_rates(run.records, FA_RATES if oracle else [], oracle_score)
    for index, rate in enumerate(FA_RATES):
        ideal = f" {_fmt(best[index].recall)} |" if oracle else ""
        lines.append(f"| {rate:g} | {_fmt(mine[index].recall)} |" + ideal)
    return "\n".join(lines)


@dataclass(frozen=True)
class GroupFigures:
    """One `--by` group's counted rows: how many, and its alerts per tier."""

    rows: int
    anomalies: int
    alerts: dict[str, int]
    high: AlertCounts  # at high and above (labelled: its precision, recall, false alerts)

    @classmethod
    def of(cls, records: Sequence[ScoredRecord]) -> "GroupFigures":
        tiers = Counter(record.severity for record in records)
        return cls(
            rows=len(records),
            anomalies=sum(record.is_anomaly for record in records),
            alerts={tier: tiers[tier] for tier in SEVERITIES},
            high=at_severity(records, "high"),
        )

    @property
    def high_alerts(self) -> int:
        return self.alerts["high"] + self.alerts["critical"]

    def as_json(self, labelled: bool) -> dict[str, Any]:
        figures: dict[str, Any] = {"rows": self.rows, "alerts": self.alerts}
        if labelled:
            figures |= {
                "anomalies": self.anomalies,
                "high+": {
                    "precision": self.high.precision,
                    "recall": self.high.recall,
                    "false_alerts_per_10k": self.high.false_alerts_per_10k,
                },
            }
        return figures


def groups_of(run: MethodRun) -> dict[str, GroupFigures]:
    """The `--by` groups, the most alerted at high and above first (then the largest)."""
    groups = {name: GroupFigures.of(rows) for name, rows in group_by(run.records, _segment).items()}
    order = sorted(groups, key=lambda name: (-groups[name].high_alerts, -groups[name].rows, name))
    return {name: groups[name] for name in order}


def _segment(record: ScoredRecord) -> str:
    return record.segment


def report_by(run: MethodRun, column: str, labelled: bool, top: int = BY_TOP) -> str:
    """Where the alerts come from: a row per value of `column` (the `BY_TOP` most alerted)."""
    groups = groups_of(run)
    lines = [f"### {run.name} by {column}", ""]
    if labelled:
        lines.append(
            f"| {column} | normal | anomalies | medium | high | critical | high+ precision | "
            "high+ recall | high+ false alerts / 10k normal |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        lines.append(f"| {column} | rows | medium | high | critical | high+ alerts / 10k rows |")
        lines.append("|---|---:|---:|---:|---:|---:|")
    for name, group in list(groups.items())[:top]:
        tiers = " | ".join(f"{group.alerts[tier]:,}" for tier in SEVERITIES)
        if labelled:
            high = group.high
            lines.append(
                f"| {_cell(name)} | {high.normal:,} | {group.anomalies:,} | {tiers} | "
                f"{_fmt(high.precision)} | {_fmt(high.recall)} | "
                f"{_fmt(high.false_alerts_per_10k, 1)} |"
            )
        else:
            per_10k = 1e4 * group.high_alerts / group.rows
            lines.append(f"| {_cell(name)} | {group.rows:,} | {tiers} | {per_10k:.1f} |")
    if len(groups) > top:
        lines.append(f"\n{len(groups) - top:,} more groups (every one in `--json`).")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """A value as one markdown table cell: its pipes escaped, its line breaks spaces."""
    return " ".join(text.split()).replace("|", "\\|")


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def draw(runs: Sequence[MethodRun], oracle: bool, path: Path) -> None:
    """Recall against false alerts per 10k normal transactions, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [0.5 * 1.15**i for i in range(48)]  # 0.5 to ~360 per 10k
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    curves: list[tuple[str, list[ScoredRecord], Score]] = [
        (run.name, run.records, method_score) for run in runs
    ]
    if oracle and runs:
        curves.append(("oracle (true tail probability)", runs[0].records, oracle_score))
    colours = {}
    for name, records, score in curves:
        recall = [at.recall for at in recall_at_rates(records, rates, score)]
        if score is oracle_score:
            axes.plot(rates, recall, label=name, linestyle="--", color="black")
        else:
            (line,) = axes.plot(rates, recall, label=name)
            colours[name] = line.get_color()
    for run in runs:
        for tier, marker in (("high", "o"), ("medium", "s")):
            counts = at_severity(run.records, tier)
            axes.plot(counts.false_alerts_per_10k, counts.recall, marker, color=colours[run.name])
    axes.set_xscale("log")
    axes.set_xlabel("false alerts per 10,000 normal transactions")
    axes.set_ylabel("recall")
    axes.set_ylim(0, 1.02)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title("Recall at matched false-alert rates (o: high+ at the defaults, s: medium+)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def configs(
    methods: Sequence[str], tiers: str | None, strict_mode: bool
) -> dict[str, ScoringConfig]:
    """Production's defaults for every method but the one asked for (and --tiers)."""
    chosen = {}
    for method in methods:
        config = ScoringConfig(method=method, strict_mode=strict_mode)  # type: ignore[arg-type]
        if tiers is not None:
            config = ScoringConfig(
                method=config.method, strict_mode=strict_mode, tiers=Tiers.parse(tiers)
            )
        chosen[method] = config
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="jalytics-backtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, help="transactions (.jsonl or .csv)")
    parser.add_argument("--label-column", help="the column that marks an anomaly")
    parser.add_argument("--oracle-column", help="a column holding the true tail probability")
    parser.add_argument(
        "--method", nargs="+", default=["tail"], choices=["tail", "log_zscore", "zscore"]
    )
    parser.add_argument("--tiers", help="ALERT_TIERS syntax: seed, or medium=1/500,high=...")
    parser.add_argument("--strict", action="store_true", help="ANOMALY_STRICT_MODE")
    parser.add_argument("--window-days", type=int, default=WINDOW_DAYS)
    parser.add_argument(
        "--recompute-every", type=float, default=3600, help="seconds of event time (3600)"
    )
    parser.add_argument(
        "--warmup-days", type=float, help="not counted (default: the window, at most half)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes replaying independent groups of scopes (default: the CPUs)",
    )
    parser.add_argument(
        "--history-unscored",
        action="store_true",
        help="score the warm-up rows without baselines, as a history posted all at once",
    )
    parser.add_argument(
        "--by",
        metavar="COLUMN",
        help="also break the alerts down by this column's values (category, merchant, ...)",
    )
    parser.add_argument("--png", type=Path, help="write the recall / false-alert curve here")
    parser.add_argument("--alerts", type=Path, help="write every alert here (JSON lines)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        chosen = configs(args.method, args.tiers, args.strict)
    except ValueError as error:
        sys.exit(f"jalytics-backtest: --tiers: {error}")
    loaded = read_rows(args.file, args.label_column, args.oracle_column, args.by)
    if not loaded.rows:
        sys.exit(f"jalytics-backtest: no valid row in {args.file} ({dict(loaded.rejected)})")
    first, last = (
        loaded.rows[0].transaction.transaction_date,
        loaded.rows[-1].transaction.transaction_date,
    )
    span_days = (last - first).total_seconds() / 86400
    warmup = (
        args.warmup_days if args.warmup_days is not None else min(args.window_days, span_days / 2)
    )
    counted_from = first + timedelta(days=warmup)
    labelled = args.label_column is not None
    oracle = args.oracle_column is not None
    print(
        f"# Backtest of {args.file}: {len(loaded.rows):,} rows from {first:%Y-%m-%d} to "
        f"{last:%Y-%m-%d}; counted from {counted_from:%Y-%m-%d %H:%M} (after {warmup:g} days "
        f"of warm-up)"
    )
    if loaded.rejected:
        print(f"\n{sum(loaded.rejected.values()):,} rows rejected:")
        for reason, count in loaded.rejected.most_common(10):
            print(f"- {count:,}: {reason}")
    runs, alerts = [], []
    for name, config in chosen.items():
        run, flagged = run_method(name, config, loaded.rows, counted_from, args)
        runs.append(run)
        alerts += [(name, row, verdict) for row, verdict in flagged]
        print("\n" + report(run, labelled, oracle))
        if args.by:
            print("\n" + report_by(run, args.by, labelled))
    if args.png:
        draw(runs, oracle, args.png)
        print(f"\ncurve written to {args.png}")
    if args.alerts:
        _write_alerts(args.alerts, alerts)
    if args.json:
        _write_json(args.json, runs, labelled, args.by)


def _write_alerts(path: Path, alerts: Sequence[tuple[str, Row, Verdict]]) -> None:
    with path.open("w") as out:
        for method, row, verdict in alerts:
            body = {
                "method": method,
                "transaction": Transaction.model_validate(
                    row.transaction.model_dump(include=set(Transaction.model_fields))
                ).model_dump(mode="json"),
                "label": row.label,
                "verdict": verdict.model_dump(mode="json", exclude={"baseline"}),
            }
            out.write(json.dumps(body) + "\n")


def _write_json(
    path: Path, runs: Sequence[MethodRun], labelled: bool, by: str | None = None
) -> None:
    figures: dict[str, Any] = {}
    for run in runs:
        entry: dict[str, Any] = {"alerts": dict(run.alerts)}
        if labelled:
            for tier in SEVERITIES:
                counts = at_severity(run.records, tier)
                entry[f"{tier}+"] = {
                    "precision": counts.precision,
                    "recall": counts.recall,
                    "false_alerts_per_10k": counts.false_alerts_per_10k,
                }
            entry["recall_at"] = {
                f"{at.rate_per_10k:g}": at.recall for at in recall_at_rates(run.records, FA_RATES)
            }
        if by:
            groups = groups_of(run).items()
            entry["by"] = {
                "column": by,
                "groups": {name: group.as_json(labelled) for name, group in groups},
            }
        figures[run.name] = entry
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
