"""APScheduler 3 idle: N cron jobs a day away in its SQLAlchemyJobStore (SQLite), then
sleep. Run with bench/peers/.venv-aps3; prints "ready" once the jobs are stored."""

from __future__ import annotations

import asyncio
import sys

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler


async def noop() -> None:
    return None


def stored(jobs: int, database: str) -> AsyncIOScheduler:
    """A started, paused scheduler that has added ``jobs`` cron jobs (03:00 daily, a day
    away) to its SQLAlchemyJobStore on the SQLite file ``database``; needs a running loop."""
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{database}")},
        timezone="Pacific/Kiritimati",
    )
    scheduler.start(paused=True)
    for i in range(jobs):
        scheduler.add_job(noop, "cron", hour=3, minute=0, id=f"idle-{i:05d}")
    return scheduler


async def main(jobs: int, database: str) -> None:
    scheduler = stored(jobs, database)
    scheduler.resume()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
