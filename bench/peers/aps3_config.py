"""APScheduler 3 storing N cron jobs: a started (paused) AsyncIOScheduler adding each job
to its SQLAlchemyJobStore on a fresh SQLite file, then shutting down. Run with
bench/peers/.venv-aps3; the bench times the whole process."""

from __future__ import annotations

import asyncio
import sys

from aps3_idle import stored  # the same jobs, the same store: this script's own folder


async def main(jobs: int, database: str) -> None:
    stored(jobs, database).shutdown(wait=False)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
