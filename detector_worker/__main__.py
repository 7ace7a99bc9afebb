"""`python -m detector_worker`: run one detector process (scale out by starting more)."""

import asyncio

import faust
import uvloop
from prometheus_client import CollectorRegistry

from detector_worker.app import create_app
from detector_worker.settings import DetectorSettings
from shared.logging import configure_logging
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(DetectorSettings)
    # uvloop: the event loop's own overhead per Kafka record is a sizeable share of the
    # detector's CPU (Faust schedules several callbacks per record).
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    configure_logging(settings.log_level, "detector_worker")
    app = create_app(settings, CollectorRegistry())
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.upper(),
        override_logging=False,
        quiet=True,
        redirect_stdouts=False,
    )
    # Faust's start-up spinner writes terminal escape codes even when stdout is no terminal,
    # which would corrupt the first JSON log line.
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
