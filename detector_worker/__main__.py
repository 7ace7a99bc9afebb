"""`python -m detector_worker`: run one detector process (scale out by starting more)."""

import faust
from prometheus_client import CollectorRegistry

from detector_worker.app import create_app
from detector_worker.settings import DetectorSettings
from shared.logging import configure_logging
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(DetectorSettings)
    # No uvloop here or in the other workers: with it, aiokafka can stay disconnected after a
    # broker restart (aio-libs/aiokafka#1038; tests/faults/test_broker_outage.py caught it in
    # the gateway). It saved little CPU per record anyway; Faust's own machinery dominates.
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
