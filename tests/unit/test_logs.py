"""The JSON log line: ``time``, ``level``, ``logger``, ``message``, then the record's extra
fields in the order given, then ``exception``; what JSON has no type for as its str. Log
collectors read these lines, so they are compared here with that contract spelled out."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from runner.logs import JsonFormatter, with_fields

WHEN = datetime(2027, 1, 4, 10, 0, 3, 123456, tzinfo=UTC)


def record(msg: str, *args: object, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError as error:
            exc_info = (type(error), error, error.__traceback__)
    made = logging.getLogger("runner.loop").makeRecord(
        "runner.loop", logging.WARNING, "(unknown file)", 0, msg, args, exc_info, extra=extra
    )
    made.created = WHEN.timestamp()
    return made


def expected(made: logging.LogRecord, **extra: Any) -> str:
    """The line as the contract says it, written by the standard encoder."""
    entry: dict[str, Any] = {
        "time": "2027-01-04T10:00:03.123+00:00",
        "level": "warning",
        "logger": "runner.loop",
        "message": made.getMessage(),
    }
    entry |= extra
    if made.exc_info:
        entry["exception"] = logging.Formatter().formatException(made.exc_info)
    return json.dumps(entry, default=str)


@pytest.mark.parametrize(
    ("msg", "args", "extra"),
    [
        ("run started", (), {}),
        (
            "run %s",
            ("succeeded",),
            {"event": "job-1", "execution_id": 7, "lateness_s": 0.125, "lease_lost": False},
        ),
        ("occurrence %s: %s", ("missed", None), {"scheduled_time": WHEN, "error": None}),
        ("événement «%s»", ('ü\n"x"',), {"event": "naïve\t", "attempts": [1, {"a": 2.5}]}),
        ("an extra named like a first field", (), {"time": "mine", "level": 3}),
    ],
)
def test_a_line_has_the_first_fields_then_the_extra_ones(
    msg: str, args: tuple[object, ...], extra: dict[str, Any]
) -> None:
    made = record(msg, *args, **extra)
    line = JsonFormatter().format(made)
    assert line == expected(made, **extra)
    assert list(json.loads(line))[:4] == ["time", "level", "logger", "message"]


def test_an_exception_comes_last() -> None:
    made = record("could not record the end of %d runs", 3, exc=True, event="a")
    line = JsonFormatter().format(made)
    assert line == expected(made, event="a")
    assert "ValueError: boom" in json.loads(line)["exception"]


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_with_fields_logs_what_log_with_extra_logs() -> None:
    logger = logging.getLogger("tests.logs")
    logger.setLevel(logging.INFO)
    lines = Lines()
    logger.addHandler(lines)
    try:
        fields = {"event": "a", "execution_id": 1, "error": None}
        logger.warning("run %s", "failed", extra=fields)
        with_fields(logger, logging.WARNING, fields, "run %s", "failed")
        with_fields(logger, logging.DEBUG, fields, "below the logger's level")
    finally:
        logger.removeHandler(lines)
    first, second = lines.lines
    assert first.pop("time") <= second.pop("time")
    assert (
        first
        == second
        == {
            "level": "warning",
            "logger": "tests.logs",
            "message": "run failed",
            "event": "a",
            "execution_id": 1,
            "error": None,
        }
    )
