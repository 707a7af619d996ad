"""Wall time. The only module that reads the system clock; everything else is given a Clock."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # asyncio costs a command-line tool that only reads the time 30 ms
    import asyncio


class Clock(Protocol):
    """Where time comes from. Tests pass a fake clock that moves only when told to."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event) -> None:
        """Return at ``deadline`` or as soon as ``wake`` is set, whichever is first."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event) -> None:
        import asyncio

        delay = (deadline - self.now()).total_seconds()
        if delay <= 0 or wake.is_set():
            return
        # asyncio.timeout, not wait_for: no task to create and cancel on every idle turn.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await wake.wait()
