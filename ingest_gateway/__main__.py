"""`python -m ingest_gateway`: serve the HTTP API (stateless: run as many as you like)."""

from prometheus_client import CollectorRegistry

from ingest_gateway.app import create_app
from ingest_gateway.server import run
from ingest_gateway.settings import GatewaySettings
from shared.logging import configure_logging
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.log_level, "ingest_gateway")
    # SIGTERM/SIGINT: stop accepting, let in-flight requests finish (up to the timeout),
    # then run cleanup, which flushes the producer.
    run(
        create_app(settings, CollectorRegistry()),
        settings.host,
        settings.port,
        settings.shutdown_timeout_seconds,
    )


if __name__ == "__main__":
    main()
