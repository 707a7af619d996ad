"""Lateness: one-time jobs at distinct instants, 100 a second for 10 s, start minus
scheduled time.

runner (``runner run`` on SQLite; start = the execution's ``start_time``), APScheduler
3.11 (AsyncIOScheduler + SQLAlchemyJobStore on SQLite; start = when the job function
runs) and the floor, a bare asyncio ``loop.call_at`` per instant, each a whole process,
alternately ``--rounds`` times. Prints p50, p99 and max per setup (medians over the
rounds) and runner's p99 as a multiple of the floor's.

    bash bench/peers/setup.sh && .venv/bin/python bench/bench_lateness.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from common import (
    APS3,
    PEERS,
    RUNNER,
    machine,
    median,
    percentile,
    require_peer,
    run,
    spawned,
    table,
)

LEAD = 20.0  # s from launch to the first instant: start-up and the config applied
JOBS_MODULE = "async def noop():\n    return None\n"


def instants(jobs: int, per_second: int) -> list[float]:
    first = time.time() + LEAD
    return [first + i / per_second for i in range(jobs)]


def runner_lateness(times: Sequence[float], workdir: Path) -> list[float]:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    lines = ["settings:", "  database: sqlite:///runner.db", "events:"]
    for i, at in enumerate(times):
        when = datetime.fromtimestamp(at, UTC).isoformat()
        lines += [
            f"  - name: at-{i:05d}",
            "    function: benchjobs:noop",
            f'    schedule: {{at: "{when}"}}',
        ]
    (directory / "scheduler.yaml").write_text("\n".join(lines) + "\n")
    (directory / "benchjobs.py").write_text(JOBS_MODULE)
    run([str(RUNNER), "apply"], directory)
    with spawned(
        [str(RUNNER), "run", "--no-watch", "--log-format", "json"], directory, directory / "log"
    ):
        # Until every job has started, or half a minute after the last instant.
        time.sleep(max(0.0, max(times) - time.time()))
        while len(rows := _started(directory / "runner.db")) < len(times):
            if time.time() > max(times) + 30:
                break
            time.sleep(0.5)
    if len(rows) != len(times):
        raise RuntimeError(f"runner started {len(rows)} of {len(times)} jobs")
    # In Python, to the microsecond: SQLite's julianday() keeps only milliseconds.
    return [(_utc(start) - _utc(scheduled)).total_seconds() for start, scheduled in rows]


def _started(database: Path) -> list[tuple[str, str]]:
    """(start, scheduled) of each scheduled run that has ended: its true start recorded."""
    with sqlite3.connect(database) as db:
        return db.execute(
            "SELECT start_time, scheduled_time FROM scheduler_executions"
            " WHERE trigger = 'schedule' AND end_time IS NOT NULL"
        ).fetchall()


def _utc(stored: str) -> datetime:
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def aps3_lateness(times: Sequence[float], workdir: Path) -> list[float]:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    (directory / "instants").write_text("\n".join(map(repr, times)))
    script = str(PEERS / "aps3_lateness.py")
    out = run([str(APS3), script, str(directory / "instants"), str(directory / "peer.db")], workdir)
    lateness: list[float] = json.loads(out.strip().splitlines()[-1])["lateness"]
    if len(lateness) != len(times):
        raise RuntimeError(f"APScheduler started {len(lateness)} of {len(times)} jobs")
    return lateness


def floor_lateness(times: Sequence[float], workdir: Path) -> list[float]:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    (directory / "instants").write_text("\n".join(map(repr, times)))
    out = run([sys.executable, __file__, "--floor-child", str(directory / "instants")], workdir)
    lateness: list[float] = json.loads(out)
    return lateness


async def _call_at_all(times: Sequence[float]) -> list[float]:
    loop = asyncio.get_running_loop()
    lateness: list[float] = []
    done = loop.create_future()

    def fire(at: float) -> None:
        lateness.append(time.time() - at)
        if len(lateness) == len(times) and not done.done():
            done.set_result(None)

    offset = time.time() - loop.time()
    for at in times:
        loop.call_at(at - offset, fire, at)
    await done
    return lateness


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--per-second", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--floor-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor_child:
        times = [float(line) for line in Path(args.floor_child).read_text().split()]
        print(json.dumps(asyncio.run(_call_at_all(times))))
        return
    require_peer(APS3)
    setups: dict[str, Callable[[Sequence[float], Path], list[float]]] = {
        "asyncio call_at (floor)": floor_lateness,
        "runner, SQLite": runner_lateness,
        "APScheduler 3.11, SQLite": aps3_lateness,
    }
    print(f"# {args.jobs} jobs, {args.per_second} a second, {args.rounds} rounds; {machine()}")
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in setups}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for name, setup in setups.items():
                ms = [1000 * x for x in setup(instants(args.jobs, args.per_second), Path(scratch))]
                figure = (percentile(ms, 50), percentile(ms, 99), max(ms))
                figures[name].append(figure)
                p50, p99, top = figure
                print(f"round {round_ + 1}: {name}: p50 {p50:.1f}, p99 {p99:.1f}, max {top:.1f} ms")
    floor_p99 = median([f[1] for f in figures["asyncio call_at (floor)"]])
    rows = []
    for name, values in figures.items():
        p50, p99, top = (median([v[i] for v in values]) for i in range(3))
        rows.append([name, f"{p50:.1f}", f"{p99:.1f}", f"{top:.1f}", f"{p99 / floor_p99:.2f}x"])
    print(table(["setup", "p50 ms", "p99 ms", "max ms", "p99 vs floor"], rows))


if __name__ == "__main__":
    main()
