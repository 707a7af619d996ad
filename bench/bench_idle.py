"""Idle: N events a day away (cron 03:00 in a zone where that is far off), then 30 s of
nothing to do: CPU time and resident memory.

runner (``runner run`` on SQLite, ``check_interval: 1``, watching its config), APScheduler
3.11 (AsyncIOScheduler + SQLAlchemyJobStore on SQLite) and the floor, a bare asyncio
process that wakes once a second, each a whole process, alternately ``--rounds`` times.
CPU is read from /proc/PID/schedstat (nanoseconds, every thread), memory is VmRSS and the
peak VmHWM.

    bash bench/peers/setup.sh && .venv/bin/python bench/bench_idle.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import (
    APS3,
    PEERS,
    RUNNER,
    machine,
    median,
    require_peer,
    run,
    spawned,
    table,
    write_cron_config,
)

FLOOR = (
    "import asyncio\n"
    "async def main():\n"
    "    print('ready', flush=True)\n"
    "    while True:\n"
    "        await asyncio.sleep(1)\n"
    "asyncio.run(main())\n"
)


def cpu_seconds(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def memory_mib(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(
    argv: list[str], cwd: Path, ready: Callable[[Path], bool], window: float
) -> tuple[float, float, float]:
    log = cwd / "log"
    with spawned(argv, cwd, log) as process:
        deadline = time.monotonic() + 300
        while not ready(log):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not get ready:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        time.sleep(3)  # what start-up left to do
        before = cpu_seconds(process.pid)
        time.sleep(window)
        spent = cpu_seconds(process.pid) - before
        rss, peak = memory_mib(process.pid)
    return spent * 1000, rss, peak


def runner_idle(events: int, workdir: Path, window: float) -> tuple[float, float, float]:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    write_cron_config(directory, events)
    run([str(RUNNER), "apply"], directory)
    argv = [str(RUNNER), "run", "--log-format", "json"]
    return measure(argv, directory, lambda log: '"runner started"' in log.read_text(), window)


def aps3_idle(events: int, workdir: Path, window: float) -> tuple[float, float, float]:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    argv = [str(APS3), str(PEERS / "aps3_idle.py"), str(events), str(directory / "peer.db")]
    return measure(argv, directory, lambda log: "ready" in log.read_text(), window)


def floor_idle(events: int, workdir: Path, window: float) -> tuple[float, float, float]:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    argv = [sys.executable, "-c", FLOOR]
    return measure(argv, directory, lambda log: "ready" in log.read_text(), window)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    require_peer(APS3)
    setups = {
        "asyncio sleep(1) (floor)": floor_idle,
        "runner, SQLite": runner_idle,
        "APScheduler 3.11, SQLite": aps3_idle,
    }
    print(f"# idle, {args.events} events, {args.window:g} s window; {machine()}", flush=True)
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in setups}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for name, setup in setups.items():
                figure = setup(args.events, Path(scratch), args.window)
                figures[name].append(figure)
                cpu, rss, peak = figure
                line = f"{cpu:.1f} ms CPU, RSS {rss:.0f} MiB (peak {peak:.0f})"
                print(f"round {round_ + 1}: {name}: {line}", flush=True)
    rows = []
    for name, values in figures.items():
        cpu, rss, peak = (median([v[i] for v in values]) for i in range(3))
        rows.append([name, f"{cpu:.1f}", f"{rss:.0f}", f"{peak:.0f}"])
    print(table(["setup", f"CPU ms per {args.window:g} s", "RSS MiB", "peak RSS MiB"], rows))


if __name__ == "__main__":
    main()
