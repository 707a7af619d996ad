"""Helpers the benchmarks share: child processes, medians, tables, the machine line."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
APS3 = PEERS / ".venv-aps3" / "bin" / "python"
APS4 = PEERS / ".venv-aps4" / "bin" / "python"
RUNNER = Path(sys.executable).with_name("runner")


def clean_environment() -> dict[str, str]:
    """This environment without the runner's own variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}


@contextlib.contextmanager
def spawned(argv: Sequence[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in a session of its own, its output in ``log``; gone afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_environment(),
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run(
    argv: Sequence[str], cwd: Path, timeout: float = 600, env: Mapping[str, str] | None = None
) -> str:
    """Run ``argv`` to completion (in :func:`clean_environment`, with ``env`` over it); its
    stdout. Raises with its output when it fails."""
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env={**clean_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line naming the machine, Python, the load when the bench ran, and how fast
    this process runs a fixed pure-Python loop (a figure to compare runs across days:
    the same machine kind has measured 2-3x apart)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load} at start, {_loop_speed():.0f}M loop steps/s"
    )


def _loop_speed(steps: int = 2_000_000) -> float:
    """Millions of ``total += i`` steps a second, best of three."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        total = 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - began)
    return steps / best / 1e6


def write_cron_config(directory: Path, count: int) -> None:
    """The idle scenario's config in ``directory``: ``count`` cron events a day away
    (03:00 in Pacific/Kiritimati) calling ``benchjobs:noop``, in one file, with the module."""
    lines = ["settings:", "  database: sqlite:///runner.db", "  check_interval: 1", "events:"]
    for i in range(count):
        lines += [
            f"  - name: idle-{i:05d}",
            "    function: benchjobs:noop",
            '    schedule: {cron: "0 3 * * *", timezone: Pacific/Kiritimati}',
        ]
    (directory / "scheduler.yaml").write_text("\n".join(lines) + "\n")
    (directory / "benchjobs.py").write_text("async def noop():\n    return None\n")


def require_peer(python: Path) -> None:
    if not python.exists():
        sys.exit(f"{python} is missing: run bench/peers/setup.sh first")
