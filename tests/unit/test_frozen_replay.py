"""The live replay's timing without processes (benchmarks/frozen_replay.py)."""

from datetime import UTC, datetime

from benchmarks.frozen_replay import frozen_replay
from benchmarks.streams import StreamConfig, generate_stream
from benchmarks.world import MerchantSize, WorldConfig

# Late merchants appear on day 8, inside the evaluated days (7-9).
CONFIG = StreamConfig(world=WorldConfig(days=10, volume=0.2, late_days=2), anomaly_from_day=7)
NOW = datetime(2025, 1, 16, 12, tzinfo=UTC)  # the day after the stream's last


def test_it_scores_the_evaluated_days_in_order_and_recomputes_only_when_asked() -> None:
    stream = generate_stream(3, CONFIG)
    scored_from = CONFIG.scored_from()
    frozen = list(frozen_replay(stream, scored_from, NOW, every=0))
    recomputed = list(frozen_replay(stream, scored_from, NOW, every=20))

    evaluated = [item for item in stream if item.transaction.transaction_date >= scored_from]
    assert [item for item, _, _ in frozen] == evaluated
    # Before the first recompute both judge alike; a late merchant, absent from the
    # history, is judged differently once a recompute has seen its first charges.
    assert frozen[:20] == recomputed[:20]
    late = [
        (a[2], b[2])
        for a, b in zip(frozen[20:], recomputed[20:], strict=True)
        if a[0].size is MerchantSize.LATE
    ]
    assert late and any(z_frozen != z_recomputed for z_frozen, z_recomputed in late)
