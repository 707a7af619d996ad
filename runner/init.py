"""PID 1 duties for ``runner run`` as a container's entrypoint.

As PID 1, every orphaned process in the container becomes our child and must be reaped,
or zombies pile up. Reaping them from inside the asyncio program would race with the
event loop's own child watcher, so, like tini, we fork: the parent stays a tiny init that
forwards signals and reaps everything, the child runs the runner.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from types import FrameType

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
_PR_SET_CHILD_SUBREAPER = 36


def wanted(environ: dict[str, str] | os._Environ[str]) -> bool:
    """True as PID 1 (or when ``RUNNER_INIT=1`` asks for it, e.g. to test it)."""
    return os.getpid() == 1 or environ.get("RUNNER_INIT") == "1"


def become_init() -> None:
    """Fork. Returns in the child, which goes on to run; the parent never returns."""
    if os.getpid() != 1:
        _become_subreaper()  # orphans come to us as they would to PID 1
    child = os.fork()
    if child == 0:
        return
    _supervise(child)


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _supervise(child: int) -> None:
    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)
