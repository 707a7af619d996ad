"""One runner per SQLite file: an exclusive lock beside the database."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from runner.dburl import sqlite_file
from runner.errors import RunnerError


@contextlib.contextmanager
def exclusive_runner(url: str, held: int | None = None) -> Iterator[int | None]:
    """Hold the runner lock of an SQLite database (nothing for PostgreSQL); yields the
    lock file's descriptor (None for PostgreSQL).

    A second ``runner run`` on the same file is refused with a clear message; other
    commands (list, trigger, ...) do not take the lock and work beside it. ``held`` is
    the descriptor of a lock this process holds already (taken before an exec).
    """
    path = sqlite_file(url)
    if path is None:
        yield None
        return
    if held is not None:
        try:
            yield held
        finally:
            os.close(held)
        return
    lock = f"{path}.runner-lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunnerError(
                f"another `runner run` (pid {holder}) is using {path}; an SQLite database "
                "serves one runner (use PostgreSQL to run several)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield fd
    finally:
        os.close(fd)
