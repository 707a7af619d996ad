"""Word from the kernel that a file changed, so that nothing has to poll for it.

On Linux, inotify: the event loop holds the descriptor with its other sockets and sleeps
until the kernel has something to say. :func:`watch_directories` returns None where inotify
is not available (another system, or the per-user watch limit reached); the caller then
falls back to polling.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import struct
from collections.abc import Callable, Sequence

log = logging.getLogger("runner.notify")

# <sys/inotify.h>: what happens to a name in a watched directory, or to the directory.
_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_ONLYDIR = 0x01000000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, length of the name that follows


class Watch:
    """An inotify descriptor read by the running event loop; :meth:`close` ends it."""

    def __init__(self, fd: int, directories: dict[int, str], on_change: Callable[[str], None]):
        self._fd = fd
        self._directories = directories
        self._on_change = on_change
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        offset = 0
        while offset < len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            start = offset + _EVENT.size
            name = os.fsdecode(data[start : start + length].rstrip(b"\0"))
            offset = start + length
            directory = self._directories.get(wd)
            if mask & _IN_Q_OVERFLOW or directory is None:
                self._on_change("")  # events were lost: anything may have changed
            else:
                self._on_change(os.path.join(directory, name) if name else directory)

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1


def watch_directories(directories: Sequence[str], on_change: Callable[[str], None]) -> Watch | None:
    """Call ``on_change(path)`` in the running event loop whenever a name in one of
    ``directories`` (not their subdirectories) is created, written, renamed or removed,
    or the directory itself is moved or removed; ``path`` is ``""`` when the kernel lost
    events (anything may have changed). None when inotify cannot watch them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init, add_watch = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None  # not Linux
    fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        log.warning("cannot watch for changes: %s", os.strerror(ctypes.get_errno()))
        return None
    watched: dict[int, str] = {}
    for directory in directories:
        wd = add_watch(fd, os.fsencode(directory), ctypes.c_uint32(_MASK))
        if wd < 0:
            log.warning("cannot watch %s: %s", directory, os.strerror(ctypes.get_errno()))
            os.close(fd)
            return None
        watched[wd] = directory
    return Watch(fd, watched, on_change)
