"""Command jobs die with their runner.

A command runs as the leader of a process group of its own. If the runner is killed
(SIGKILL, OOM), nothing it runs may go on beside the retry that recovery schedules:

- the leader is told by the kernel: :func:`die_with_parent` (``PR_SET_PDEATHSIG``, set in
  the child before ``exec``) sends it SIGKILL when the runner dies;
- what the leader started stays in its group, so the runner records the group (host and
  process identity, :func:`identify`) while it runs, and the next runner on the same
  host to recover the run stops the group (:func:`stop_group`) before the retry starts.

A recorded group is stopped only if it is provably the same one: same host, boot and
PID namespace, and, while its leader lives, the same leader start time (a reused pid
has another). Once the leader is gone its number cannot be reused while any process of
the group lives (Linux keeps a pid taken while a group holds it), so what answers to
the group id is what is left of the job.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
from functools import cache
from typing import Any

log = logging.getLogger("runner.job")

_PR_SET_PDEATHSIG = 1


def default_runner_id() -> str:
    """``host:pid``: unique among live runners, readable in history."""
    return f"{socket.gethostname()}:{os.getpid()}"


@cache
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """In a forked child before ``exec``: be SIGKILLed when the parent dies.

    The parent may have died between the fork and this call, in which case the signal
    never comes: then the child ends at once.
    """
    parent = os.getppid()
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def supported() -> bool:
    return sys.platform.startswith("linux")


def machine() -> dict[str, str]:
    """What makes two processes' ids comparable: host, boot and PID namespace."""
    return {
        "host": socket.gethostname(),
        "boot": _read("/proc/sys/kernel/random/boot_id").strip(),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
    }


def same_machine(record: dict[str, Any]) -> bool:
    """True when ``record`` was made on this host, boot and PID namespace."""
    return {k: record.get(k) for k in ("host", "boot", "pid_namespace")} == machine()


def identify(pgid: int) -> dict[str, Any]:
    """A record of the running group ``pgid`` (its leader's pid), for :func:`stop_group`."""
    return {**machine(), "pgid": pgid, "leader_start": _start_time(pgid)}


def stop_group(record: dict[str, Any]) -> bool:
    """SIGKILL the group ``record`` names if it is still the job's; True if it was."""
    if not same_machine(record):
        return False  # another host (or boot, or container): not ours to judge
    pgid = int(record["pgid"])
    started = _start_time(pgid)
    if started is not None and started != record.get("leader_start"):
        return False  # the number now belongs to another process
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    log.warning("stopped process group %d, left running by a runner that died", pgid)
    return True


def _start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), None when there is no such process."""
    try:
        stat = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def _read(path: str) -> str:
    with open(path) as file:
        return file.read()
