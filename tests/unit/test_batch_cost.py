"""benchmarks.batch_cost runs the pipeline's steps on the throughput workload in one process:
it must keep working as the detector's code changes (small sizes here)."""

from datetime import UTC, datetime

from benchmarks.batch_cost import batches, observer, one_round
from benchmarks.support import index
from benchmarks.workload import baselines


def test_a_round_times_every_step_of_every_record() -> None:
    work = batches(30, 10)
    assert [len(records) for records in work] == [10, 10, 10]
    steps = one_round(work, index(baselines(datetime.now(UTC))), observer())
    assert set(steps) == {"decide", "encode", "rows", "metrics"}
    assert all(value >= 0 for value in steps.values())
