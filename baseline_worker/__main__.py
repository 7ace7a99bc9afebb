"""`python -m baseline_worker [--once]`: run the baseline worker (a standby if another leads)."""

import argparse
import asyncio
import signal

from prometheus_client import CollectorRegistry

from baseline_worker.service import BaselineService
from baseline_worker.settings import BaselineSettings
from shared.logging import configure_logging
from shared.settings import load_settings


async def _serve(service: BaselineService, once: bool) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stopping.set)
    await service.run(once=once)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="recompute once, then exit")
    args = parser.parse_args()
    settings = load_settings(BaselineSettings)
    configure_logging(settings.log_level, "baseline_worker")
    asyncio.run(_serve(BaselineService(settings, CollectorRegistry()), args.once))


if __name__ == "__main__":
    main()
