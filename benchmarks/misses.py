"""Where the production scorer falls short of the oracle, anomaly by anomaly.

    .venv/bin/python -m benchmarks.misses --seeds 7 8 9 10 --rate 5

What it does: replays the family streams (benchmarks/streams.py) through production's
pieces at the current defaults (benchmarks/replay.py), and per family lists every anomaly
the oracle catches at `--rate` false alerts per 10k and `tail` does not
(`benchmarks.evaluate.missed_by_method`), with what explains a miss: the merchant, its size,
whether it drifts, the hour, the baseline that judged it (kind and sample count), and the
scorer's p against the true p. Then the false alerts at high or above, by merchant size
and the kind of scope that judged them. docs/accuracy.md ("Round 2") reads its output.
"""

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.evaluate import by_family, missed_by_method
from benchmarks.family_accuracy import verdict_score
from benchmarks.replay import replay
from benchmarks.streams import StreamConfig, StreamItem, generate_stream, record_of
from benchmarks.world import DEFAULT_FAMILIES, FAMILIES, WorldConfig, build_world
from detector_worker.scoring import ScoringConfig
from schemas import Verdict


@dataclass(frozen=True)
class Scored:
    seed: int
    item: StreamItem
    verdict: Verdict


def scored(seeds: Sequence[int], config: StreamConfig) -> list[Scored]:
    """The evaluated items of every seed with production's verdicts."""
    out: list[Scored] = []
    for seed in seeds:
        stream = generate_stream(seed, config)
        verdicts = replay((item.transaction for item in stream), ScoringConfig())
        out += [
            Scored(seed, item, verdict)
            for item, (_, verdict) in zip(stream, verdicts, strict=True)
            if item.transaction.transaction_date >= config.scored_from()
        ]
    return out


def describe(entry: Scored) -> str:
    item, verdict = entry.item, entry.verdict
    baseline = verdict.baseline
    judged = "none" if baseline is None else f"{baseline.scope.kind.value} n={baseline.count}"
    rule = verdict.rule or "-"
    p = "-" if verdict.tail_probability is None else f"{verdict.tail_probability:.1e}"
    multiple = "-" if item.multiple is None else f"{item.multiple:.1f}x"
    return (
        f"seed {entry.seed} {item.transaction.merchant} ({item.size}, "
        f"{'drifting' if item.drifting else 'steady'}) "
        f"{item.transaction.transaction_date:%a %H}h {item.transaction.amount} {multiple}: "
        f"{judged} ({rule}, {verdict.severity or 'none'}), "
        f"p {p} against p_true {item.p_true:.1e}"
    )


def tail_part(entry: Scored) -> str:
    """Where the judging tail read the amount: its empirical knots or the GPD past them
    (the amount over the scope's level, as `detector_worker.tail.survival` reads it)."""
    baseline = entry.verdict.baseline
    if baseline is None or baseline.tail is None:
        return "no tail"
    tail = baseline.tail
    past = float(entry.item.transaction.amount) / tail.level_ratio > tail.amounts[-1]
    return "GPD" if past else "knots"


def tail_detail(entry: Scored, truths: dict[tuple[int, str], str]) -> str:
    """The judging tail's fit (excesses k, shape read, where the amount fell) and the
    merchant's true amount family, for a false alert."""
    baseline = entry.verdict.baseline
    truth = truths.get((entry.seed, entry.item.transaction.merchant), "?")
    if baseline is None or baseline.tail is None:
        return f"no tail; truth {truth}"
    tail = baseline.tail
    k = round(tail.exceedance * baseline.count)
    return (
        f"k={k} shape {tail.shape:.2f} last knot {tail.amounts[-1]:.0f} "
        f"(share {tail.survival[-1]:.1e}) {tail_part(entry)}; truth {truth}"
    )


def false_alert_report(entries: Sequence[Scored], truths: dict[tuple[int, str], str]) -> str:
    """Every high-tier and critical false alert with its fit, then counts by family, merchant
    size, the scope that judged and the part of the tail; `p_true < 1/5,000` counts the
    alerts the true distribution itself puts at high or above (the nominal share)."""
    alerts = [
        e for e in entries if not e.item.is_anomaly and e.verdict.severity in ("high", "critical")
    ]
    lines = [f"high+ false alerts: {len(alerts)}"]
    lines += [f"  {e.item.family}: {describe(e)}; {tail_detail(e, truths)}" for e in alerts]
    groups = Counter((e.item.family, str(e.item.size), _judged_by(e), tail_part(e)) for e in alerts)
    lines.append("by (family, size, judged by, part of the tail):")
    lines += [f"  {key}: {n}" for key, n in sorted(groups.items())]
    nominal = Counter(e.item.family for e in alerts if e.item.p_true < 1 / 5000)
    lines.append("of them with p_true < 1/5,000: " + str(dict(nominal)))
    normal = Counter((e.item.family, _judged_by(e)) for e in entries if not e.item.is_anomaly)
    lines.append("normal transactions by (family, judged by): " + str(dict(normal)))
    return "\n".join(lines)


def truths_of(seeds: Sequence[int], world: WorldConfig) -> dict[tuple[int, str], str]:
    """Each merchant's true amount family (its parameters), by seed and name."""
    return {(seed, m.name): repr(m.family) for seed in seeds for m in build_world(seed, world)}


def _judged_by(entry: Scored) -> str:
    baseline = entry.verdict.baseline
    return "none" if baseline is None else baseline.scope.kind.value


def report(entries: Sequence[Scored], rate_per_10k: float) -> str:
    records = [record_of(e.item, e.verdict.severity, verdict_score(e.verdict)) for e in entries]
    index = {id(r): e for r, e in zip(records, entries, strict=True)}
    lines = []
    for family, rows in sorted(by_family(records).items()):
        missed = missed_by_method(rows, rate_per_10k)
        caught = sum(1 for r in rows if r.is_anomaly)
        lines.append(f"{family}: {len(missed)} missed ({caught} anomalies)")
        lines += [f"  {describe(index[id(rows[i])])}" for i in missed]
    false_alerts = [
        e for e in entries if not e.item.is_anomaly and e.verdict.severity in ("high", "critical")
    ]
    lines.append(f"high+ false alerts: {len(false_alerts)}")
    lines += [f"  {e.item.family}: {describe(e)}" for e in false_alerts]
    high = Counter((str(e.item.size), _judged_by(e)) for e in false_alerts)
    normal = Counter(str(e.item.size) for e in entries if not e.item.is_anomaly)
    lines.append("high+ false alerts by (merchant size, scope that judged): " + str(dict(high)))
    lines.append("normal transactions by merchant size: " + str(dict(normal)))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9, 10])
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=5.0, help="false alerts per 10k")
    parser.add_argument(
        "--families", nargs="+", default=list(DEFAULT_FAMILIES), choices=sorted(FAMILIES)
    )
    parser.add_argument(
        "--false-alerts",
        action="store_true",
        help="only the high+ false alerts, each with its tail's fit and the true family",
    )
    args = parser.parse_args(argv)
    world = WorldConfig(volume=args.volume, families=tuple(args.families))
    config = StreamConfig(world=world)
    entries = scored(args.seeds, config)
    if args.false_alerts:
        print(false_alert_report(entries, truths_of(args.seeds, world)))
    else:
        print(report(entries, args.rate))


if __name__ == "__main__":
    main()
