"""Logging: readable text on a terminal, one JSON object per line elsewhere (for collectors)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any, TextIO

# Attributes every LogRecord has; anything else was passed in ``extra`` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra, "exception"}`` on one line (the
    exception only if there is one); a value JSON has no type for is written as its str."""

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        return self.line(record.created, record.levelname, record.name, record.getMessage(), extra)

    @staticmethod
    def line(created: float, levelname: str, name: str, message: str, extra: dict[str, Any]) -> str:
        """The line of a record made at ``created`` (Unix time) with these fields."""
        if not _FIRST.isdisjoint(extra):  # an extra replaces a first field
            first = {"time": _utc_millis(created), "level": levelname.lower(), "logger": name}
            return _encode(first | {"message": message} | extra)
        # The line is put together from its parts: the first fields' text is the same for
        # every record of a logger and level, and only the extra fields need the encoder.
        head = f'{{"time": "{_utc_millis(created)}", {_head(levelname, name)}'
        end = f", {_encode(extra)[1:]}" if extra else "}"
        return f'{head}"message": {_string(message)}{end}'


def _encoder() -> Callable[[Any], str]:
    """``json.JSONEncoder(default=str).encode``, without the encoder it makes for each
    call where the C one is there: that setup is half of encoding a log line's fields."""
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:
        return json.JSONEncoder(default=str).encode
    # No markers: a value that contains itself ends in RecursionError, not ValueError.
    encode = make(None, str, _string, None, ": ", ", ", False, False, True)
    return lambda value: "".join(encode(value, 0))


_FIRST = frozenset(("time", "level", "logger", "message"))
_string = json.encoder.encode_basestring_ascii  # as the encoder writes a str (ensure_ascii)
_encode = _encoder()


@functools.lru_cache(maxsize=256)
def _head(levelname: str, name: str) -> str:
    """The text of the ``level`` and ``logger`` fields, with the separator after them."""
    return f'"level": {_string(levelname.lower())}, "logger": {_string(name)}, '


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _utc_millis(created: float) -> str:
    """``created`` as ISO 8601 UTC to the millisecond (``2026-12-01T11:53:03.123+00:00``);
    a burst logs thousands of lines in the same second, whose text is made once."""
    second = int(created)
    millis = int((created - second) * 1000)
    return f"{_utc_second(second)}.{millis:03d}+00:00"


def with_fields(
    logger: logging.Logger, level: int, fields: dict[str, Any], msg: str, *args: object
) -> None:
    """``logger.log(level, msg, *args, extra=fields)``, for the lines of every run (its
    start and end), with what those lines never need left out: an exception or a stack,
    the caller's frame, checking one by one that a field does not replace a record's
    attribute. Where the record would reach runner's own JSON handler and nothing else
    (no filter, no other handler: how ``runner run`` logs), the line is written without
    a record, the same line :meth:`JsonFormatter.format` would write."""
    if not logger.isEnabledFor(level):
        return
    handler = _only_handler(logger, level)
    if handler is None:
        record = logger.makeRecord(logger.name, level, "(unknown file)", 0, msg, args, None)
        record.__dict__.update(fields)
        logger.handle(record)
        return
    created = time.time()  # noqa: TID251 (a log line's time, as a LogRecord takes it)
    message = msg % args if args else msg
    handler.write(
        JsonFormatter.line(created, logging.getLevelName(level), logger.name, message, fields)
    )


def _only_handler(logger: logging.Logger, level: int) -> LoopStreamHandler | None:
    """The one handler a record of ``logger`` at ``level`` reaches, if that is runner's
    own, formatting JSON, and no filter is on the way; else None."""
    found: LoopStreamHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:  # exactly ours: a subclass may write otherwise
            if found is not None or type(handler) is not LoopStreamHandler:
                return None
            if type(handler.formatter) is not JsonFormatter or handler.filters:
                return None
            if level < handler.level:
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        return text + "".join(f" {k}={v}" for k, v in extra.items())


class LoopStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line as it comes, and flushes once per turn of the event loop when
    logging from one: a burst logs two lines a run, and a write to the pipe or file
    behind stderr for each line cost a tenth of the run. Lines logged anywhere else (a
    command of the CLI, a job's thread) are flushed at once, and so is what waits; so
    are they before the process forks (a job's multiprocessing), not to be written twice.

    ``stream`` is the handler's own (see :func:`setup`) when ``owned``: it closes it."""

    def __init__(self, stream: TextIO, owned: bool = False) -> None:
        super().__init__(stream)
        self.owned = owned
        self._flush_on: object = None  # the loop a flush is scheduled on
        _HANDLERS.add(self)

    def flush(self) -> None:
        asyncio = sys.modules.get("asyncio")  # not imported: no event loop runs
        try:
            loop = asyncio.get_running_loop() if asyncio is not None else None
        except RuntimeError:
            loop = None
        if loop is None:
            self.flush_now()
        elif self._flush_on is not loop:  # none yet, or on a loop that has ended since
            self._flush_on = loop
            loop.call_soon(self.flush_now)

    def flush_now(self) -> None:
        """Write out the lines held."""
        self._flush_on = None
        super().flush()

    def write(self, line: str) -> None:
        """What :meth:`emit` does with a record, for its formatted ``line``."""
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line + self.terminator)
                self.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": line}))


_HANDLERS: weakref.WeakSet[LoopStreamHandler] = weakref.WeakSet()


def flush() -> None:
    """Write out the lines runner's handlers hold (before the process execs or forks)."""
    for handler in list(_HANDLERS):
        if not getattr(handler.stream, "closed", False):
            handler.flush_now()


os.register_at_fork(before=flush)


def _own_stream(stream: TextIO) -> TextIO | None:
    """A buffered text stream of its own on ``stream``'s file, so that the handler says
    when its lines go out while ``stream`` (stderr, line-buffered) stays as it is for
    everyone else; None where it has no file (a test's capture)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return open(os.dup(fd), "w", encoding=encoding, errors="backslashreplace")


def setup(fmt: str = "auto", level: str = "info") -> None:
    """Send runner's logs to stderr as ``text`` or ``json`` (``auto``: text on a terminal)."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    own = _own_stream(sys.stderr)
    handler = LoopStreamHandler(own or sys.stderr, owned=own is not None)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, LoopStreamHandler) and old.owned:
            old.flush_now()
            old.stream.close()
            _HANDLERS.discard(old)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # No record needs its caller's file and line, thread or process: skipping them makes
    # each record cheaper (the logging HOWTO's "Optimization"), which a burst feels.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
