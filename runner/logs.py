"""Logging: readable text on a terminal, one JSON object per line elsewhere (for collectors)."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from typing import Any

# Attributes every LogRecord has; anything else was passed in ``extra`` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra}`` on one line."""

    # One encoder for every record: json.dumps with ``default`` builds a new one per call.
    _encoder = json.JSONEncoder(default=str)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_millis(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry)


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _utc_millis(created: float) -> str:
    """``created`` as ISO 8601 UTC to the millisecond (``2026-12-01T11:53:03.123+00:00``);
    a burst logs thousands of lines in the same second, whose text is made once."""
    second = int(created)
    millis = int((created - second) * 1000)
    return f"{_utc_second(second)}.{millis:03d}+00:00"


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        return text + "".join(f" {k}={v}" for k, v in extra.items())


def setup(fmt: str = "auto", level: str = "info") -> None:
    """Send runner's logs to stderr as ``text`` or ``json`` (``auto``: text on a terminal)."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # No record needs its caller's file and line, thread or process: skipping them makes
    # each record cheaper (the logging HOWTO's "Optimization"), which a burst feels.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
