"""Whether the hour-of-day level pays, with the hours production keeps: the closed days'.

    .venv/bin/python -m benchmarks.hour_choice --seeds 7 8 9 10 --workers 2

Replays the family streams (benchmarks.tail_choice.evaluate_grid) through production's
defaults with hour levels off and on. The replay's rollup (MemoryRollup) holds the hours of
the window's closed days only, as `baseline_window_hours` does (ops/migrations/016), so this
is what the baseline worker would publish. Prints each family's figures side by side and
writes them to --json (docs/accuracy.md, round 3).
"""

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from baseline_worker.tail import TailFit
from benchmarks.accuracy import _jsonable, _table, fmt
from benchmarks.streams import StreamConfig
from benchmarks.tail_choice import Candidate, evaluate_grid
from benchmarks.world import WorldConfig
from detector_worker.scoring import ScoringConfig

COLUMNS = (
    ("share_of_oracle@2", 2),
    ("share_of_oracle@5", 2),
    ("share_of_oracle@13", 2),
    ("high+.precision", 2),
    ("high+.recall", 2),
    ("high+.false_alerts_per_10k", 1),
    ("calibration.medium", 2),
    ("calibration.high", 2),
)


def candidates() -> list[Candidate]:
    return [
        Candidate("hours off", replace(TailFit(), hour_levels=False), ScoringConfig()),
        Candidate("hours on (closed days)", replace(TailFit(), hour_levels=True), ScoringConfig()),
    ]


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    rows = [["family", "candidate", *(name for name, _ in COLUMNS)]]
    families = sorted(next(iter(results.values())))
    for family in families:
        for name, by_family in results.items():
            figures = by_family[family]
            rows.append([family, name, *(fmt(figures[key], d) for key, d in COLUMNS)])
    return _table(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9, 10])
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/hour_levels_closed_days.json")
    )
    args = parser.parse_args(argv)
    config = StreamConfig(world=WorldConfig(volume=args.volume))
    results = evaluate_grid(candidates(), args.seeds, [config], args.workers)
    print(table(results))
    args.json.write_text(
        json.dumps(
            _jsonable(
                {
                    "command": " ".join(["python -m benchmarks.hour_choice", *sys.argv[1:]]),
                    "seeds": args.seeds,
                    "volume": args.volume,
                    "results": results,
                }
            ),
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
