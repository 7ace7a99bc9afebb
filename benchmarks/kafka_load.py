"""Fixed-rate producer of transactions straight to Kafka, run as its own process by
`benchmarks.latency`; writes what it sent as JSON to --out.

    KAFKA_BOOTSTRAP_SERVERS=... TOPIC_TRANSACTIONS=... \
        .venv/bin/python -m benchmarks.kafka_load --rate 1000 --seconds 30 --out /tmp/sent.json

Each transaction's `received_at` is the wall-clock time just before it is handed to the
producer (the same producer settings as the gateway's: acks=all, no linger): latencies
are measured from there.
"""

import argparse
import asyncio
import json
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.workload import transaction
from schemas import encode_model
from schemas.records import transaction_key
from shared.kafka import make_producer


async def produce_at_rate(
    bootstrap: str, topic: str, rate: float, seconds: float, seed: int
) -> dict[str, Any]:
    producer = make_producer(bootstrap, linger_ms=0)
    await producer.start()
    rng, sent, behind = random.Random(seed), 0, 0.0
    started = time.perf_counter()
    try:
        while (due := started + sent / rate) < started + seconds:
            ahead = due - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            behind = max(behind, -ahead)
            txn = transaction(rng, datetime.now(UTC), sent)
            await producer.send(topic, key=transaction_key(txn.id), value=encode_model(txn))
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - started
    return {"sent": sent, "seconds": elapsed, "max_behind_ms": behind * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="transactions per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    bootstrap, topic = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["TOPIC_TRANSACTIONS"]
    result = asyncio.run(produce_at_rate(bootstrap, topic, args.rate, args.seconds, args.seed))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
