"""APScheduler 3 storing N cron jobs: a started (paused) AsyncIOScheduler adding each job
to its SQLAlchemyJobStore on a fresh SQLite file, then shutting down. Run with
bench/peers/.venv-aps3; the bench times the whole process."""

from __future__ import annotations

import asyncio
import sys

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler


async def noop() -> None:
    return None


async def main(jobs: int, database: str) -> None:
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{database}")},
        timezone="Pacific/Kiritimati",
    )
    scheduler.start(paused=True)
    for i in range(jobs):
        scheduler.add_job(noop, "cron", hour=3, minute=0, id=f"idle-{i:05d}")
    scheduler.shutdown(wait=False)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
