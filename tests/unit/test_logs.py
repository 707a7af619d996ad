"""The JSON log line: ``time``, ``level``, ``logger``, ``message``, then the record's extra
fields in the order given, then ``exception``; what JSON has no type for as its str. Log
collectors read these lines, so they are compared here with that contract spelled out."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from runner import logs
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


@pytest.fixture
def stderr_pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], str]]:
    """stderr on a real pipe, with runner's logging set up on it; reads what has reached
    the pipe so far."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    pipe = open(write_end, "w")  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", pipe)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.setup("json")

    def written() -> str:
        try:
            return os.read(read_end, 1 << 16).decode()
        except BlockingIOError:
            return ""

    yield written
    logs.flush()
    for handler in root.handlers:
        if isinstance(handler, logs.LoopStreamHandler) and handler.owned:
            handler.stream.close()
    root.handlers[:], root.level = handlers, level
    monkeypatch.undo()
    pipe.close()
    os.close(read_end)


def test_a_line_logged_outside_an_event_loop_is_written_at_once(
    stderr_pipe: Callable[[], str],
) -> None:
    logging.getLogger("runner.cli").warning("one")
    assert json.loads(stderr_pipe())["message"] == "one"


def test_lines_logged_in_an_event_loop_are_written_at_the_end_of_its_turn(
    stderr_pipe: Callable[[], str],
) -> None:
    async def burst() -> tuple[str, str]:
        for i in range(3):
            logging.getLogger("runner.loop").info("run %d", i)
        during = stderr_pipe()
        await asyncio.sleep(0)  # the turn ends
        return during, stderr_pipe()

    during, after = asyncio.run(burst())
    assert during == ""
    assert [json.loads(line)["message"] for line in after.splitlines()] == [
        "run 0",
        "run 1",
        "run 2",
    ]


def test_a_run_line_written_without_a_record_is_the_line_of_its_record(
    stderr_pipe: Callable[[], str],
) -> None:
    """Under runner's own handler alone, with_fields writes its lines directly; they are
    the lines logging would write for the same records."""
    logger = logging.getLogger("runner.loop")
    cases: list[tuple[int, dict[str, Any], str, tuple[object, ...]]] = [
        (logging.INFO, {"event": "a", "execution_id": 1, "lateness_s": 0.002}, "run started", ()),
        (logging.WARNING, {"event": "é\n", "error": None, "lease_lost": True}, "run %s", ("x",)),
        (logging.INFO, {"time": "mine", "level": 3}, "an extra named like a first field", ()),
        (logging.INFO, {}, "no fields", ()),
    ]
    root = logging.getLogger()
    pytests = [h for h in root.handlers if not isinstance(h, logs.LoopStreamHandler)]
    for handler in pytests:  # pytest's capture would take every record the slow way
        root.removeHandler(handler)
    try:
        assert logs._only_handler(logger, logging.INFO) is root.handlers[0]
        for level, fields, msg, args in cases:
            logger.log(level, msg, *args, extra=fields)
            with_fields(logger, level, fields, msg, *args)
            with_fields(logger, logging.DEBUG, fields, "below the level: not written")
            by_logging, direct = (json.loads(line) for line in stderr_pipe().splitlines())
            assert by_logging.pop("time") <= direct.pop("time")
            assert list(direct.items()) == list(by_logging.items())
    finally:
        for handler in pytests:
            root.addHandler(handler)
