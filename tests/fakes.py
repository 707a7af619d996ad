"""Test doubles shared by the test suites."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class FakeClock:
    """A clock that moves only when told to. ``sleep_until`` returns at once (the test
    drives time), recording the deadline it was asked to sleep until; ``wait_until``
    returns only once the test has moved the clock to the instant waited for."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.sleeps: list[datetime] = []
        self._waiting: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.set(self.current + timedelta(seconds=seconds))
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when
        waiting, self._waiting = self._waiting, []
        for instant, waiter in waiting:
            if waiter.done():
                continue
            if instant <= when:
                waiter.set_result(None)
            else:
                self._waiting.append((instant, waiter))

    @property
    def waiting(self) -> list[datetime]:
        """The instants that someone waits for, earliest first."""
        return sorted(instant for instant, waiter in self._waiting if not waiter.done())

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event) -> None:
        self.sleeps.append(deadline)
        await asyncio.sleep(0)

    async def wait_until(self, instant: datetime) -> None:
        if instant <= self.current:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append((instant, waiter))
        await waiter
