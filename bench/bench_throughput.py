"""Throughput of a burst: N jobs due in the same second, run by 1 runner on SQLite,
1 runner on PostgreSQL and 2 runners on PostgreSQL (same burst, same run).

Prints, per setup, the seconds from the due time to the last job finished and the jobs
per second. Needs a PostgreSQL server (``--pg``, default the local test server).

    .venv/bin/python bench/bench_throughput.py --jobs 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import yaml

JOBS_MODULE = "import asyncio\n\n\nasync def work():\n    await asyncio.sleep(0.01)\n"


def write_config(directory: Path, database: str, jobs: int, at: datetime) -> None:
    events = [
        {"name": f"job-{i:05d}", "function": "benchjobs:work", "schedule": {"at": at.isoformat()}}
        for i in range(jobs)
    ]
    settings = {"database": database, "max_concurrent_executions": 50, "shutdown_grace": 1}
    text = yaml.safe_dump({"settings": settings, "events": events}, sort_keys=False)
    (directory / "scheduler.yaml").write_text(text)
    (directory / "benchjobs.py").write_text(JOBS_MODULE)


def start(directory: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "runner", "run", "--log-format", "json", "--no-watch"]
    with (directory / "runner.log").open("wb") as log:
        return subprocess.Popen(command, cwd=directory, stdout=log, stderr=log)


async def finished_pg(url: str) -> tuple[int, datetime | None]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*), max(end_time) FROM scheduler_executions WHERE end_time IS NOT NULL"
        )
        assert row is not None
        return int(row[0]), row[1]
    except asyncpg.UndefinedTableError:
        return 0, None  # not migrated yet
    finally:
        await conn.close()


def finished_sqlite(path: Path) -> tuple[int, datetime | None]:
    if not path.exists():
        return 0, None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        count, last = conn.execute(
            "SELECT count(*), max(end_time) FROM scheduler_executions WHERE end_time IS NOT NULL"
        ).fetchone()
    return count, datetime.fromisoformat(last).replace(tzinfo=UTC) if last else None


def measure(label: str, runners: int, database: str, jobs: int, root: Path) -> tuple[str, float]:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    processes = []
    try:
        for index in range(runners):
            directory = root / f"{label}-{index}"
            directory.mkdir()
            write_config(directory, database, jobs, at)
            processes.append(start(directory))
        sqlite_file = root / f"{label}-0" / "bench.db"
        while True:
            if database.startswith("sqlite"):
                count, last = finished_sqlite(sqlite_file)
            else:
                count, last = asyncio.run(finished_pg(database))
            if count >= jobs and last is not None:
                return label, (last - at).total_seconds()
            if any(p.poll() is not None for p in processes):
                raise SystemExit(f"{label}: a runner exited; see {root}")
            time.sleep(0.2)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


async def pg_admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results.append(measure("sqlite-1", 1, "sqlite:///bench.db", args.jobs, root))
        for runners in (1, 2):
            name = f"bench_{secrets.token_hex(4)}"
            asyncio.run(pg_admin(args.pg, f'CREATE DATABASE "{name}"'))
            url = args.pg.rsplit("/", 1)[0] + f"/{name}"
            try:
                results.append(measure(f"postgres-{runners}", runners, url, args.jobs, root))
            finally:
                asyncio.run(pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"{args.jobs} jobs due in the same second, 10 ms each, 50 at once per runner")
    print(f"{'setup':<12} {'seconds':>8} {'jobs/s':>8}   (cores: {os.cpu_count()})")
    for label, seconds in results:
        print(f"{label:<12} {seconds:8.2f} {args.jobs / seconds:8.0f}")


if __name__ == "__main__":
    main()
