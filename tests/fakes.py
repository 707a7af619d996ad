"""Test doubles shared by the test suites."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class FakeClock:
    """A clock that moves only when told to. ``sleep_until`` returns at once (the test
    drives time), recording the deadline it was asked to sleep until."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.sleeps: list[datetime] = []

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event) -> None:
        self.sleeps.append(deadline)
        await asyncio.sleep(0)
