"""The timeline: where the last day's occurrences and the next day's fires fall. Pure.

A window spans ``HOURS`` before and after ``now``; positions are in SVG user units from 0
(the window's start) to ``WIDTH`` (its end), so ``now`` sits in the middle. Clock changes
of the shown zones are marked too, since they are when a wall-clock schedule moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from runner import occurrences, schedules
from runner.specs import EventSpec
from runner.store.sql import ExecutionRow
from runner.web import words

HOURS = 24
WIDTH = 960.0
MAX_FIRES = 240  # per event and window: denser schedules show as a solid band


@dataclass(frozen=True)
class Window:
    """``[start, end]`` around ``now``, mapped onto ``[0, WIDTH]``."""

    start: datetime
    now: datetime
    end: datetime

    @classmethod
    def around(cls, now: datetime, hours: int = HOURS) -> Window:
        span = timedelta(hours=hours)
        return cls(now - span, now, now + span)

    def x(self, t: datetime) -> float:
        """The position of ``t`` (clamped to the window)."""
        share = (t - self.start) / (self.end - self.start)
        return round(WIDTH * min(1.0, max(0.0, share)), 1)

    def __contains__(self, t: datetime) -> bool:
        return self.start <= t <= self.end


@dataclass(frozen=True)
class Mark:
    """One occurrence (``kind`` is its outcome) or, with kind ``next``, one coming fire."""

    x: float
    kind: str
    label: str
    x2: float | None = None  # where a band (kind ``band``) ends


@dataclass(frozen=True)
class Tick:
    """A labelled hour line of the time axis (UTC)."""

    x: float
    label: str


@dataclass(frozen=True)
class ClockChange:
    """A change of a shown zone's UTC offset inside the window."""

    x: float
    zone: str
    at: datetime
    label: str


def past_marks(window: Window, history: Iterable[ExecutionRow], zone: ZoneInfo) -> list[Mark]:
    """A mark per execution record scheduled inside the window before ``now``."""
    return [
        Mark(window.x(row.scheduled_time), row.outcome, _label(row.outcome, row, zone))
        for row in history
        if window.start <= row.scheduled_time <= window.now
    ]


def _label(outcome: str, row: ExecutionRow, zone: ZoneInfo) -> str:
    attempt = f", attempt {row.attempt}" if row.attempt > 1 else ""
    when = f"{words.local(row.scheduled_time, zone)} ({words.utc(row.scheduled_time)})"
    return f"{outcome.replace('_', ' ')}: {when}{attempt}"


def fires(spec: EventSpec, after: datetime, until: datetime | None, limit: int) -> list[datetime]:
    """Up to ``limit`` fire times of ``spec`` after ``after`` (and not after ``until``),
    jitter included, as the runner will fire them."""
    found: list[datetime] = []
    t = after
    while len(found) < limit and (fire := occurrences.next_fire(spec, t)) is not None:
        if until is not None and fire > until:
            break
        found.append(fire)
        t = fire
    return found


def future_marks(window: Window, spec: EventSpec, zone: ZoneInfo) -> list[Mark]:
    """A mark per fire of ``spec`` in the window after ``now``; past ``MAX_FIRES`` of them,
    a band from the last one to the window's end instead of the rest."""
    times = fires(spec, window.now, window.end, MAX_FIRES + 1)
    marks = [
        Mark(window.x(t), "next", f"next: {words.local(t, zone)} ({words.utc(t)})")
        for t in times[:MAX_FIRES]
    ]
    if len(times) > MAX_FIRES:
        label = f"more than {MAX_FIRES} fires in the next {HOURS} h"
        marks.append(Mark(marks[-1].x, "band", label, x2=WIDTH))
    return marks


def ticks(window: Window, every_hours: int = 6) -> list[Tick]:
    """Hour lines every ``every_hours`` hours of UTC, labelled ``HH:00``."""
    step = timedelta(hours=every_hours)
    first = window.start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first += timedelta(hours=-first.hour % every_hours)
    found = []
    t = first
    while t <= window.end:
        if t >= window.start:
            found.append(Tick(window.x(t), t.strftime("%H:%M")))
        t += step
    return found


def clock_changes(window: Window, zones: Sequence[str]) -> list[ClockChange]:
    """The offset changes of ``zones`` inside the window, in time order."""
    found = []
    for name in sorted(set(zones)):
        zone = ZoneInfo(name)
        for at, before, after in schedules.clock_changes(zone, window.start, window.end):
            found.append(
                ClockChange(window.x(at), name, at, _change_label(zone, at, before, after))
            )
    return sorted(found, key=lambda c: (c.at, c.zone))


def _change_label(zone: ZoneInfo, at: datetime, before: timedelta, after: timedelta) -> str:
    """E.g. ``Europe/Berlin: clocks go forward, 02:00 → 03:00 (01:00 UTC)``."""
    direction = "forward" if after > before else "back"
    wall_before = (at + before).strftime("%H:%M")
    wall_after = (at + after).strftime("%H:%M")
    return (
        f"{zone.key}: clocks go {direction} on {(at + after).date().isoformat()}, "
        f"{wall_before} → {wall_after} ({at.astimezone(UTC).strftime('%H:%M')} UTC)"
    )
