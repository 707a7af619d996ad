"""When an event fires: its schedule plus its stable jitter. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from datetime import datetime, timedelta

from runner import schedules
from runner.specs import EventSpec

_NO_JITTER = timedelta(0)
SCHEDULE_CACHE = 65536
_schedules: dict[Hashable, schedules.Schedule] = {}


def jitter(spec: EventSpec) -> timedelta:
    """A pseudo-random delay in ``[0, spec.jitter]`` seconds, the same for every occurrence."""
    if not spec.jitter:
        return _NO_JITTER
    digest = hashlib.sha256(spec.name.encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % (spec.jitter + 1))


def schedule_of(spec: EventSpec) -> schedules.Schedule:
    """The schedule object of ``spec``, built once per distinct schedule (the cache
    starts over when it holds :data:`SCHEDULE_CACHE`)."""
    schedule = _schedules.get(spec.schedule_key)
    if schedule is None:
        if len(_schedules) >= SCHEDULE_CACHE:
            _schedules.clear()
        schedule = _schedules[spec.schedule_key] = schedules.from_spec(spec.schedule)
    return schedule


def next_fire(spec: EventSpec, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``, jitter included; None when there is none."""
    offset = jitter(spec)
    occurrence = schedule_of(spec).next_after(after - offset)
    return None if occurrence is None else _shifted(occurrence, offset)


def fire_times(spec: EventSpec, after: datetime, n: int) -> list[datetime]:
    """Up to ``n`` fire times strictly after ``after``, in order, jitter included."""
    offset = jitter(spec)
    occurrences = schedules.fire_times(schedule_of(spec), after - offset, n)
    return [t for t in (_shifted(o, offset) for o in occurrences) if t is not None]


def first_fire(spec: EventSpec, now: datetime) -> datetime | None:
    """The fire time a newly created (or rescheduled) event starts from.

    A one-time event keeps its time even when it has passed, so the misfire policy can
    decide, visibly, whether it still runs; recurring events start from the next fire.
    """
    schedule = schedule_of(spec)
    if isinstance(schedule, schedules.At):
        return _shifted(schedule.at, jitter(spec))
    return next_fire(spec, now)


def _shifted(occurrence: datetime, offset: timedelta) -> datetime | None:
    """``occurrence`` delayed by ``offset``; None past the last representable instant."""
    try:
        return occurrence + offset
    except OverflowError:
        return None
