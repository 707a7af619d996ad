"""APScheduler 3: one-time async jobs at the given instants (Unix times, one per line in
a file), on its SQLAlchemyJobStore (SQLite). Run with bench/peers/.venv-aps3. Prints one
JSON line: each job's start minus its scheduled time, in seconds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

LATENESS: list[float] = []
EXPECTED: list[int] = []
ALL_RAN = asyncio.Event()


async def stamp(at: float) -> None:
    LATENESS.append(time.time() - at)
    if len(LATENESS) == EXPECTED[0]:
        ALL_RAN.set()


async def main(instants: list[float], database: str) -> None:
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{database}")},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone="UTC",
    )
    for i, at in enumerate(instants):
        run_date = datetime.fromtimestamp(at, UTC)
        scheduler.add_job(stamp, "date", run_date=run_date, args=[at], id=f"job-{i:05d}")
    EXPECTED.append(len(instants))
    scheduler.start()
    # Until every job has run, or half a minute after the last instant.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ALL_RAN.wait(), max(instants) - time.time() + 30)
    scheduler.shutdown(wait=False)
    print(json.dumps({"lateness": LATENESS}))


if __name__ == "__main__":
    asyncio.run(main([float(x) for x in Path(sys.argv[1]).read_text().split()], sys.argv[2]))
