"""Burst: N one-time async no-op jobs due at once, until every run is recorded.

runner (``runner run --once`` on SQLite, history recorded per run) beside APScheduler 3.11
(AsyncIOScheduler + SQLAlchemyJobStore on SQLite) and APScheduler 4 (AsyncScheduler +
SQLAlchemyDataStore over aiosqlite), alternately, ``--rounds`` times, each a whole process.
runner's figure runs from its first claim to the last run recorded (``created_at`` of the
first execution to the last ``finished_at``); the peers' from the moment all jobs are due
to the last job's end. With ``--pg``, runner also on PostgreSQL with one and two runners.

    bash bench/peers/setup.sh && .venv/bin/python bench/bench_burst.py --jobs 10000
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from common import APS3, APS4, PEERS, RUNNER, machine, median, require_peer, run, table

JOBS_MODULE = "async def noop():\n    return None\n"
SPAN = (
    "SELECT (julianday(max(end_time)) - julianday(min(created_at))) * 86400, count(*)"
    " FROM scheduler_executions WHERE outcome = 'succeeded'"
)


def write_config(directory: Path, database: str, jobs: int) -> None:
    at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    events = [
        {"name": f"job-{i:05d}", "function": "benchjobs:noop", "schedule": {"at": at}}
        for i in range(jobs)
    ]
    settings = {"database": database, "max_concurrent_executions": 100}
    text = yaml.safe_dump({"settings": settings, "events": events}, sort_keys=False)
    (directory / "scheduler.yaml").write_text(text)
    (directory / "benchjobs.py").write_text(JOBS_MODULE)


def runner_sqlite(jobs: int, workdir: Path) -> float:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    write_config(directory, "sqlite:///runner.db", jobs)
    run([str(RUNNER), "apply"], directory)
    run([str(RUNNER), "run", "--once", "--log-format", "json"], directory)
    with sqlite3.connect(directory / "runner.db") as db:
        seconds, done = db.execute(SPAN).fetchone()
    if done != jobs:
        raise RuntimeError(f"runner recorded {done} of {jobs} runs")
    return float(seconds)


def runner_pg(jobs: int, workdir: Path, pg: str, runners: int) -> float:
    import asyncio

    import asyncpg  # only with --pg

    name = f"runner_bench_{secrets.token_hex(4)}"
    admin = f"{pg}/postgres" if pg.count("/") == 2 else pg.rsplit("/", 1)[0] + "/postgres"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def span(url: str) -> tuple[float, int]:
        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow(
                "SELECT extract(epoch FROM max(end_time) - min(created_at)), count(*)"
                " FROM scheduler_executions WHERE outcome = 'succeeded'"
            )
            assert row is not None
            return float(row[0] or 0), int(row[1])
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = pg.rsplit("/", 1)[0] + f"/{name}"
    try:
        directory = Path(tempfile.mkdtemp(dir=workdir))
        write_config(directory, url, jobs)
        run([str(RUNNER), "apply"], directory)
        command = [str(RUNNER), "run", "--once", "--log-format", "json"]
        logs = [(directory / f"runner{i}.log").open("wb") for i in range(runners)]
        children = [
            subprocess.Popen(command, cwd=directory, stdout=log, stderr=log) for log in logs
        ]
        for child in children:
            child.wait(600)
        seconds, done = asyncio.run(span(url))
        if done != jobs:
            raise RuntimeError(f"runner recorded {done} of {jobs} runs")
        return seconds
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def peer(python: Path, script: str, jobs: int, workdir: Path) -> float:
    database = Path(tempfile.mkdtemp(dir=workdir)) / "peer.db"
    out = run([str(python), str(PEERS / script), str(jobs), str(database)], workdir, 900)
    figures = json.loads(out.strip().splitlines()[-1])
    if figures["jobs"] != jobs:
        raise RuntimeError(f"{script} ran {figures['jobs']} of {jobs} jobs")
    return float(figures["seconds"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pg", help="PostgreSQL server URL, e.g. postgresql://postgres@127.0.0.1/test"
    )
    parser.add_argument("--no-aps4", action="store_true", help="leave APScheduler 4 out")
    args = parser.parse_args(argv)
    require_peer(APS3)
    setups: dict[str, Callable[[Path], float]] = {
        "runner, SQLite": lambda w: runner_sqlite(args.jobs, w),
        "APScheduler 3.11, SQLite": lambda w: peer(APS3, "aps3_burst.py", args.jobs, w),
    }
    if not args.no_aps4:
        require_peer(APS4)
        setups["APScheduler 4, SQLite"] = lambda w: peer(APS4, "aps4_burst.py", args.jobs, w)
    if args.pg:
        setups["runner, PostgreSQL, 1 runner"] = lambda w: runner_pg(args.jobs, w, args.pg, 1)
        setups["runner, PostgreSQL, 2 runners"] = lambda w: runner_pg(args.jobs, w, args.pg, 2)
    print(f"# burst of {args.jobs} jobs, {args.rounds} rounds; {machine()}", flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in setups}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for name, setup in setups.items():
                began = time.perf_counter()
                try:
                    seconds[name].append(setup(Path(scratch)))
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"round {round_ + 1}: {name} failed: {exc}", file=sys.stderr)
                    continue
                print(
                    f"round {round_ + 1}: {name}: {args.jobs / seconds[name][-1]:,.0f} jobs/s"
                    f" (whole setup {time.perf_counter() - began:.1f} s)",
                    flush=True,
                )
    aps3 = median(seconds["APScheduler 3.11, SQLite"])
    rows = []
    for name, values in seconds.items():
        rate = args.jobs / median(values) if values else float("nan")
        rows.append(
            [name, f"{median(values):.2f}", f"{rate:,.0f}", f"{aps3 / median(values):.1f}x"]
        )
    print(table(["setup", "seconds (median)", "jobs/s", "vs APScheduler 3"], rows))


if __name__ == "__main__":
    main()
