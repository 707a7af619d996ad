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

    async def wait_until(self, instant: datetime) -> None:
        """Return once :meth:`now` has reached ``instant``, never before (at once if it has)."""
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

    async def wait_until(self, instant: datetime) -> None:
        import asyncio

        # The loop's timers run on the monotonic clock, which may drift from the wall
        # clock by a hair (NTP slewing): look again on waking rather than trust one sleep.
        while (delay := (instant - self.now()).total_seconds()) > 0:  # noqa: ASYNC110 (a clock, not a flag)
            await asyncio.sleep(delay)
