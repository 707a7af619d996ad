"""A schedule's next fire times and the clock changes they cross, in words: what
``runner next`` shows, with or without a config (like ``systemd-analyze calendar``);
:func:`runner.views.schedule_preview` lays it out.

Pure and cheap to import: schedules only, no database, no clock (``after`` is a parameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from runner import schedules
from runner.schedules import ClockChange, Schedule, clock_time, walls_in_words

_TICK: Final = timedelta(microseconds=1)
_LONGEST_SHIFT: Final = timedelta(hours=3)  # no zone moves its clocks by more (Troll: 2h)


@dataclass(frozen=True)
class Preview:
    """The next fires of a schedule (UTC) and the clock changes up to the last of them."""

    schedule: Schedule
    fires: list[datetime]
    changes: list[ClockChange]

    @property
    def zone(self) -> ZoneInfo:
        """The zone the schedule reads its wall clock in (UTC for a one-time ``at``)."""
        return _zone_of(self.schedule)


def preview(schedule: Schedule, after: datetime, n: int) -> Preview:
    """Up to ``n`` fires strictly after ``after``, and the clock changes on the way."""
    return with_changes(schedule, after, schedules.fire_times(schedule, after, n))


def with_changes(schedule: Schedule, after: datetime, fires: list[datetime]) -> Preview:
    """``fires`` of ``schedule`` (e.g. an event's, jitter included) from ``after``, with the
    clock changes from ``after`` to the last of them, and one just after it that repeats
    the wall time of a listed fire (its first pass comes before the change)."""
    if not fires:
        return Preview(schedule, fires, [])
    zone, last = _zone_of(schedule), fires[-1]
    walls = {fire.astimezone(zone).replace(tzinfo=None) for fire in fires}
    changes = [
        change
        for change in schedules.clock_changes_for(schedule, after, last + _LONGEST_SHIFT)
        if change.at <= last or walls.intersection(change.walls)
    ]
    return Preview(schedule, fires, changes)


def of_spec(spec: dict[str, str | None], after: str | None, n: int, now: datetime) -> Preview:
    """The preview of the schedule ``spec`` declares (None values left out), from
    ``after`` (ISO time, in the schedule's zone without an offset; default ``now``).

    ValueError with a plain message for a bad schedule or time; ``--start`` only with every.
    """
    schedule = schedules.from_spec({k: v for k, v in spec.items() if v is not None})
    try:
        start = now if after is None else schedules.parse_time(after, _zone_of(schedule))
    except ValueError as exc:
        raise ValueError(f"--after: {exc}") from None
    return preview(schedule, start, n)


def title(schedule: Schedule) -> str:
    """What the schedule is, e.g. ``cron '0 3 * * 2#2' in Europe/Berlin: the 2nd Tuesday...``."""
    if isinstance(schedule, schedules.Cron):
        words = schedules.cron_days_in_words(schedule.expression)
        return f"cron {schedule.expression!r} in {schedule.zone}" + (f": {words}" if words else "")
    if isinstance(schedule, schedules.Every):
        start = schedule.start
        since = "" if start is None else f" from {start.astimezone(schedule.zone).isoformat()}"
        unit = schedule.unit[:-1] if schedule.amount == 1 else schedule.unit
        return f"every {schedule.amount} {unit}{since} in {schedule.zone}"
    return f"at {schedule.at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def change_in_words(change: ClockChange) -> str:
    """What a clock change does to the schedule's fires, e.g. ``2027-03-28 02:00
    Europe/Berlin does not exist (clocks jump from 02:00 CET to 03:00 CEST at 01:00Z): fires
    at 03:00 CEST (01:00Z)``."""
    before, after = _zone_names(change)
    jump = "jump" if change.forward else "go back"
    how = (
        f"clocks {jump} from {clock_time(change.at + change.before)} {before} "
        f"to {clock_time(change.at + change.after)} {after} at {clock_time(change.at)}Z"
    )
    day = (change.at + change.before).date().isoformat()
    if not change.walls:
        same = "fires keep their exact spacing" if change.rule == "elapsed" else "no fire moves"
        return f"{day} {change.zone}: {how}; {same}"
    several = len(change.walls) > 1
    if change.forward:
        verb = "do not exist" if several else "does not exist"
        effect = _skipped(change, several)
    else:
        verb = "occur twice" if several else "occurs twice"
        effect = _repeated(change, several)
    return f"{day} {walls_in_words(change.walls)} {change.zone} {verb} ({how}): {effect}"


def _skipped(change: ClockChange, several: bool) -> str:
    """What becomes of wall times the clocks jump over."""
    if change.rule == "real":
        return "no fire then (an hour field of * fires at real times only)"
    jumped = f"{clock_time(change.at + change.after)} {_zone_names(change)[1]}"
    at = f"{jumped} ({clock_time(change.at)}Z)"
    return f"they fire once, at {at}" if several else f"fires at {at}"


def _repeated(change: ClockChange, several: bool) -> str:
    """What becomes of wall times the clocks pass twice."""
    wall = change.walls[0]
    first, second = wall - change.before, wall - change.after  # naive UTC of both passes
    if change.rule == "real":
        passes = f"{clock_time(first)}Z and {clock_time(second)}Z"
        return f"fire in both passes ({clock_time(wall)} at {passes})"
    local = f"{clock_time(wall)} {_zone_names(change)[0]}"
    if several:
        return f"each fires once, the first time (from {local} = {clock_time(first)}Z)"
    return f"fires once, at {local} ({clock_time(first)}Z)"


def _zone_of(schedule: Schedule) -> ZoneInfo:
    return ZoneInfo("UTC") if isinstance(schedule, schedules.At) else schedule.zone


def _zone_names(change: ClockChange) -> tuple[str, str]:
    """The zone's abbreviations just before and at the change, e.g. ``("CET", "CEST")``."""
    before = (change.at - _TICK).astimezone(change.zone).tzname()
    return before or "", change.at.astimezone(change.zone).tzname() or ""
