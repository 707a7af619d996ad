"""APScheduler 4 (pre-release): N one-time async no-op jobs due at once, on its
SQLAlchemyDataStore over aiosqlite. Run with bench/peers/.venv-aps4. Prints one JSON line:
the seconds from starting the scheduler (all schedules due) to the last job's end, and how
long adding the schedules took."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from apscheduler import AsyncScheduler
from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
from apscheduler.triggers.date import DateTrigger

ENDS: list[float] = []
DONE = asyncio.Event()
TOTAL = 0


async def noop() -> None:
    ENDS.append(time.perf_counter())
    if len(ENDS) == TOTAL:
        DONE.set()


async def main(jobs: int, database: str) -> None:
    global TOTAL
    TOTAL = jobs
    store = SQLAlchemyDataStore(f"sqlite+aiosqlite:///{database}")
    async with AsyncScheduler(store, max_concurrent_jobs=100) as scheduler:
        began = time.perf_counter()
        at = datetime.now(UTC)
        for i in range(jobs):
            # A trigger is stateful: one each.
            trigger = DateTrigger(at)
            await scheduler.add_schedule(noop, trigger, id=f"job-{i:05d}", misfire_grace_time=None)
        added = time.perf_counter() - began
        started = time.perf_counter()
        await scheduler.start_in_background()
        await asyncio.wait_for(DONE.wait(), 600)
        seconds = ENDS[-1] - started
    print(json.dumps({"seconds": seconds, "add_seconds": added, "jobs": len(ENDS)}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
