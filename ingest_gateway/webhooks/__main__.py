"""`python -m ingest_gateway.webhooks`: the notifier, delivering alerts to webhook
subscribers (its own process, consumer group, metrics port and database login)."""

import asyncio
import signal

from prometheus_client import CollectorRegistry

from ingest_gateway.webhooks.service import NotifierService
from ingest_gateway.webhooks.settings import NotifierSettings
from shared.logging import configure_logging
from shared.settings import load_settings


async def _serve(settings: NotifierSettings) -> None:
    service = NotifierService(settings, CollectorRegistry())  # its consumer needs the loop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stopping.set)
    await service.run()


def main() -> None:
    settings = load_settings(NotifierSettings)
    configure_logging(settings.log_level, "notifier")
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()
