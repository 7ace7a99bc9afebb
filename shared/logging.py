"""Structured JSON logs on stderr, one object per line."""

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

_LEVELS = {"warn": "WARNING"}


def configure_logging(level: str, service: str) -> None:
    """Route every logger (ours, aiokafka's, Faust's) through one JSON handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level.lower(), level.upper()))
    # aiokafka logs every reconnect attempt at INFO/ERROR; keep it to warnings.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
