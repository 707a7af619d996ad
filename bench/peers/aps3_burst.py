"""APScheduler 3: N one-time async no-op jobs due at once, on its SQLAlchemyJobStore
(SQLite). Run with bench/peers/.venv-aps3. Prints one JSON line: the seconds from resuming
the scheduler (all jobs due) to the last job's end, and how long adding the jobs took."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

STARTS: list[float] = []
ENDS: list[float] = []
DONE = asyncio.Event()
TOTAL = 0


async def noop() -> None:
    STARTS.append(time.perf_counter())
    ENDS.append(time.perf_counter())
    if len(ENDS) == TOTAL:
        DONE.set()


async def main(jobs: int, database: str) -> None:
    global TOTAL
    TOTAL = jobs
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{database}")},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone="UTC",
    )
    scheduler.start(paused=True)
    began = time.perf_counter()
    at = datetime.now(UTC) + timedelta(seconds=1)
    for i in range(jobs):
        scheduler.add_job(noop, "date", run_date=at, id=f"job-{i:05d}")
    added = time.perf_counter() - began
    await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
    resumed = time.perf_counter()
    scheduler.resume()
    await asyncio.wait_for(DONE.wait(), 600)
    scheduler.shutdown(wait=False)
    # Due at once: from the scheduler's first look at the store to the last job's end
    # (it removes each one-time job from the store before the job runs).
    print(json.dumps({"seconds": ENDS[-1] - resumed, "add_seconds": added, "jobs": len(ENDS)}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
