"""Schedule work from a Python program with SchedulerService.

    python examples/library.py

Every call returns a Result: check ``success``, read ``data``, or ``code`` and ``message``.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runner.service import SchedulerService
from runner.specs import Settings


async def main() -> None:
    database = Path(tempfile.mkdtemp()) / "library.db"
    service = await SchedulerService.open(f"sqlite:///{database}", Settings(check_interval=0.5))
    await service.start()  # execute due jobs in this process, in the background

    soon = datetime.now(UTC) + timedelta(seconds=1)
    once = await service.schedule_event(
        name="say-hello",
        function_name="json:dumps",  # any importable module:callable
        parameters={"obj": {"hello": "world"}},
        next_execution=soon,
    )
    print("scheduled:", once.success, once.data and once.data["next_execution"])

    every = await service.schedule_event(
        name="every-two-seconds",
        function_name="json:dumps",
        parameters={"obj": [1, 2, 3]},
        recurring=True,
        interval_type="seconds",
        interval_value=2,
        module_id="examples",
    )
    print("scheduled:", every.success)

    bad = await service.schedule_event(name="Bad Name", function_name="json:dumps")
    print("refused:", bad.code, "-", bad.message)

    await asyncio.sleep(3)
    runs = await service.get_executions("say-hello")
    print("say-hello ran:", [(r["outcome"], r["result"]) for r in runs.data or []])
    listing = await service.list_events(module_id="examples")
    print("events in module 'examples':", listing.meta["filtered_count"])
    await service.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
