"""The live replay's timing without the processes: where its calibration gap comes from.

    .venv/bin/python -m benchmarks.frozen_replay --seed 8 --recompute-every 0 2600

`benchmarks.live_replay` posts 38 days of history, waits for the baseline worker, then posts
the 7 evaluated days in about 45 s. At a recompute every 60 s of wall-clock time, the whole
evaluated week is scored against the baselines of the end of the history: the window of a
wall-clock "today", holding none of the evaluated days. This module scores the same stream,
same dates, with production's rollup, fit and scorer (as `benchmarks.replay` does), but with
the live timing: the history stored first, baselines computed at a wall-clock `now` (the day
after the stream's last day), then the evaluated transactions in time order, the baselines
recomputed (same `now`) every `--recompute-every` evaluated transactions (0: never, the live
system at a 60 s interval). Rows judged high or critical stay out of the rollup, as live.

It reproduced the live figures of seed 8 exactly (medium false alerts 69; gamma 25, normal
16), and shows them by merchant size: the excess sits at the late merchants, which appear in
the evaluated week and, without a recompute, are judged by their category all week.
"""

import argparse
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta

from baseline_worker.recompute import DEFAULT_FIT
from baseline_worker.rollup import MemoryRollup
from benchmarks.family_accuracy import ALL, per_family, verdict_score
from benchmarks.live_replay import false_alerts_by_size, shift_days
from benchmarks.replay import WINDOW_DAYS, ReplayBaselines, production_policy
from benchmarks.streams import StreamConfig, StreamItem, generate_stream, record_of
from benchmarks.world import WorldConfig
from detector_worker.scoring import ScoringConfig, score

REPORTED = ("false_alerts.medium", "calibration.medium", "false_alerts.high", "high+.recall")


def frozen_replay(
    stream: Sequence[StreamItem], scored_from: datetime, now: datetime, every: int
) -> Iterator[tuple[StreamItem, str | None, float]]:
    """The evaluated items scored with the live timing (module docstring)."""
    rollup, config = MemoryRollup(WINDOW_DAYS), ScoringConfig()
    evaluated = [item for item in stream if item.transaction.transaction_date >= scored_from]
    for item in stream:
        if item.transaction.transaction_date < scored_from:
            rollup.add(item.transaction)
    baselines = _baselines(rollup, now)
    for index, item in enumerate(evaluated):
        if every and index and index % every == 0:
            baselines = _baselines(rollup, now)
        verdict = score(item.transaction, baselines, config, now)
        if production_policy(verdict):
            rollup.add(item.transaction)
        yield item, verdict.severity, verdict_score(verdict)


def _baselines(rollup: MemoryRollup, now: datetime) -> ReplayBaselines:
    """A recompute at `now`, every tail fitted afresh (as production does)."""
    return ReplayBaselines(rollup.window(now), WINDOW_DAYS, now, DEFAULT_FIT, {})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--recompute-every", type=int, nargs="+", default=[0, 2600])
    args = parser.parse_args(argv)
    config = StreamConfig(world=WorldConfig(volume=args.volume))
    # Any fixed day does: the live replay ends the stream yesterday and recomputes today.
    last_day = datetime(2026, 11, 30, tzinfo=UTC).date()
    now = datetime.combine(last_day + timedelta(days=1), time(12), tzinfo=UTC)
    stream = shift_days(generate_stream(args.seed, config), last_day)
    offset = last_day - (config.world.start + timedelta(days=config.world.days - 1))
    scored_from = config.scored_from() + offset
    for every in args.recompute_every:
        scored = frozen_replay(stream, scored_from, now, every)
        records = [record_of(item, severity, z) for item, severity, z in scored]
        table = per_family(records)
        print(f"seed {args.seed}, a recompute every {every or 'never'} evaluated transactions")
        for family, figures in table.items():
            cells = " ".join(f"{name}={figures[name]:.2f}" for name in REPORTED)
            print(f"  {family:14} {cells}")
        print(f"  medium+ false alerts by merchant size: {false_alerts_by_size(records)}")
        print(f"  ({ALL}: {len(records)} evaluated)", file=sys.stderr)


if __name__ == "__main__":
    main()
