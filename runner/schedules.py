"""Schedules: when a job fires.

Pure: nothing here reads the clock or does I/O; the current time is always a parameter.
Every instant that goes in must be timezone-aware and every instant that comes out is aware
UTC (``tzinfo=datetime.UTC``). Times written without an offset are wall times in the
schedule's zone.

There are three kinds of schedule, one per config key:

* :class:`Cron` -- a 5-field cron expression evaluated on the zone's wall clock.
* :class:`Every` -- a fixed period counted from a start (by default 2000-01-01 00:00 local,
  Monday 2000-01-03 for weeks). Seconds, minutes and hours are exact elapsed time; days,
  weeks and months follow the wall clock (months keep the start's day, clamped to the
  month's length, without drifting).
* :class:`At` -- once.

Daylight-saving changes follow one of two rules (the product contract):

* Fixed-time rule (crons whose hour field does not start with ``*``, and ``every`` in days,
  weeks or months): a wall time that does not exist fires once, at the instant the clock
  jumps over it; a wall time that occurs twice fires once, at its first occurrence.
* Wildcard-hour rule (crons whose hour field starts with ``*``, e.g. ``*/15 * * * *``): fires
  at every real instant whose wall time matches, so in both passes of a repeated hour and
  not at all in a skipped one.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache, partial
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

Unit = Literal["seconds", "minutes", "hours", "days", "weeks", "months"]

#: Takes a wall time and returns the schedule's next wall time strictly after it (None: never).
_WallStep = Callable[[datetime], datetime | None]

_TICK: Final = timedelta(microseconds=1)
_MINUTE: Final = timedelta(minutes=1)
_DAY: Final = timedelta(days=1)
_WEEK: Final = timedelta(days=7)
_ZERO: Final = timedelta(0)

# The Gregorian calendar repeats every 400 years (146,097 days, a whole number of weeks), so
# a cron that does not fire within 400 years never fires. Most fire within days; the rarest
# go decades between fires (a 5th Monday in February: 28 years, or 40 across 2100).
_HORIZON: Final = timedelta(days=146_097)
_CHECK_FROM: Final = datetime.combine(date(2000, 1, 1), time())

# Default anchors of ``every`` without a start, as wall times in the schedule's zone.
_ANCHOR: Final = datetime.combine(date(2000, 1, 1), time())
_WEEK_ANCHOR: Final = datetime.combine(date(2000, 1, 3), time())  # a Monday

_ELAPSED_UNITS: Final = frozenset({"seconds", "minutes", "hours"})
# The longest period accepted per unit: 100 years, so arithmetic stays inside datetime's range.
_MAX_AMOUNT: Final[dict[str, int]] = {
    "seconds": 3_155_760_000,
    "minutes": 52_596_000,
    "hours": 876_600,
    "days": 36_525,
    "weeks": 5_217,
    "months": 1_200,
}
_SUFFIXES: Final[dict[str, Unit]] = {
    "s": "seconds",
    "m": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
    "mo": "months",
}
_UNITS: Final[dict[str, Unit]] = {unit: unit for unit in _SUFFIXES.values()}
_EVERY_RE: Final = re.compile(r"([0-9]+)(mo|s|m|h|d|w)")
_EVERY_HELP: Final = "every must be a positive number followed by s, m, h, d, w or mo, e.g. 15m"

_MACROS: Final[dict[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_FIELDS: Final = "minute hour day-of-month month day-of-week"
_WEEKDAY_NAMES: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ORDINAL: Final = {1: "st", 2: "nd", 3: "rd", 4: "th", 5: "th"}
# Spelt out rather than read from ``calendar``, whose names follow the process's locale.
_DAY_NAMES: Final = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


# --------------------------------------------------------------------------- time zones


def _utc(t: datetime) -> datetime:
    """``t`` in UTC; refuses naive datetimes, which name no instant."""
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t.isoformat()} has no time zone")
    return t.astimezone(UTC)


def _wall(t: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading of instant ``t`` in ``zone`` (fold cleared)."""
    return t.astimezone(zone).replace(tzinfo=None, fold=0)


def _offset(t: datetime, zone: ZoneInfo) -> timedelta:
    """The UTC offset of ``zone`` at instant ``t``."""
    return t.astimezone(zone).utcoffset() or _ZERO  # never None for a ZoneInfo


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The fixed-time rule: the instant at which wall time ``wall`` fires in ``zone``.

    A wall time that occurs once fires then; one that occurs twice fires the first time
    (fold=0); one that does not exist fires at the instant the clock jumps over it. The map
    is monotone non-decreasing in ``wall``, which the searches below rely on.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    return _jump_over(wall, zone)


def _jump_over(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant at which the clock of ``zone`` jumps over the nonexistent ``wall``."""
    # Read with the offset after the jump, ``wall`` lands before the jump; read with the
    # offset before it, after. The jump lies between.
    ends = (
        wall.replace(tzinfo=zone, fold=1).astimezone(UTC),
        wall.replace(tzinfo=zone, fold=0).astimezone(UTC),
    )
    return _bisect_change(min(ends), max(ends), zone)


def _bisect_change(lo: datetime, hi: datetime, zone: ZoneInfo) -> datetime:
    """The first whole second after ``lo`` whose offset differs from ``lo``'s.

    Requires the offsets at ``lo`` and ``hi`` to differ and no second change between them;
    time-zone changes fall on whole seconds.
    """
    base = _offset(lo, zone)
    low, high = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(datetime.fromtimestamp(middle, UTC), zone) == base:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _next_change(t: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant in ``(t, end]`` at which the UTC offset differs from the one at ``t``.

    Probes weekly: no zone changes its offset twice within a week.
    """
    base = _offset(t, zone)
    probe = t
    while probe < end:
        step = min(probe + _WEEK, end)
        if _offset(step, zone) != base:
            return _bisect_change(probe, step, zone)
        probe = step
    return None


def _changes(
    zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[tuple[datetime, timedelta, timedelta]]:
    """Each offset change in ``(start, end]``: its instant, the offset before and after."""
    t, before = start, _offset(start, zone)
    while (change := _next_change(t, end, zone)) is not None:
        after = _offset(change, zone)
        yield change, before, after
        t, before = change, after


@lru_cache(maxsize=256)
def _changes_until(
    zone: ZoneInfo, start: datetime, end: datetime
) -> tuple[tuple[datetime, timedelta, timedelta], ...]:
    """:func:`_changes`, remembered: validating many events in a few zones asks the same."""
    return tuple(_changes(zone, start, end))


def clock_changes(
    zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, timedelta, timedelta]]:
    """Each change of ``zone``'s UTC offset in ``(start, end]``: its instant (UTC), the
    offset before and the offset after."""
    return list(_changes_until(zone, _utc(start), _utc(end)))


def _next_fixed(step: _WallStep, t: datetime, zone: ZoneInfo) -> datetime | None:
    """The first fire strictly after instant ``t`` of wall times ``step`` under the fixed rule."""
    wall = _wall(t, zone)
    # Walls before wall(t) fire at or before t because the wall->instant map is monotone; so
    # do walls between wall(t) and the end of a repeated hour if t is in its second pass.
    while (wall_next := step(wall)) is not None:
        fire = _instant(wall_next, zone)
        if fire > t:
            return fire
        wall = wall_next
    return None


# --------------------------------------------------------------------------- cron


@dataclass(frozen=True, slots=True)
class _CronPlan:
    """A parsed cron expression, evaluated on naive wall times at minute resolution."""

    minutes: tuple[int, ...]  # sorted
    hours: tuple[int, ...]  # sorted
    days: frozenset[int]
    last_day: bool  # ``L``: the last day of the month
    last_workday: bool  # ``LW``: the last Monday-Friday of the month
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    nth_weekdays: frozenset[tuple[int, int]]  # ``N#K``: (weekday N, K), the K-th N of the month
    last_weekdays: frozenset[int]  # ``NL``: the last weekday N of the month
    day_or: bool  # both day fields restricted: either may match (Vixie cron's rule)
    wildcard_hour: bool

    def next_wall(self, wall: datetime) -> datetime | None:
        """The first matching wall minute strictly after ``wall``; None if there is none."""
        start = wall.replace(second=0, microsecond=0) + _MINUTE
        today = start.date()
        if self._day_matches(today):
            at = self._time_from(start.hour, start.minute)
            if at is not None:
                return datetime.combine(today, at)
        limit = today + min(_HORIZON, date.max - today)
        day = self._day_from(today + _DAY, limit) if today < limit else None
        if day is None:
            return None
        return datetime.combine(day, time(self.hours[0], self.minutes[0]))

    def _time_from(self, hour: int, minute: int) -> time | None:
        """The first matching time of day at or after ``hour:minute``."""
        i = bisect_left(self.hours, hour)
        if i < len(self.hours) and self.hours[i] == hour:
            j = bisect_left(self.minutes, minute)
            if j < len(self.minutes):
                return time(hour, self.minutes[j])
            i += 1
        return time(self.hours[i], self.minutes[0]) if i < len(self.hours) else None

    def _day_from(self, day: date, limit: date) -> date | None:
        """The first matching day in ``[day, limit]``."""
        while day <= limit:
            if day.month not in self.months:
                end = _month_end(day)
                if end >= limit:
                    return None
                day = end + _DAY
            elif self._day_matches(day):
                return day
            else:
                day += _DAY
        return None

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.day_or:
            return self._in_month(day) or self._on_weekday(day)
        return self._in_month(day) and self._on_weekday(day)

    def _in_month(self, day: date) -> bool:
        """Whether the day-of-month field matches ``day``."""
        if day.day in self.days:
            return True
        if not (self.last_day or self.last_workday) or day.day < 26:  # no month ends sooner
            return False
        end = _month_end(day)
        # The last Monday-Friday: the month's end, moved back from a Saturday or Sunday.
        workday = end - timedelta(days=max(0, end.isoweekday() - 5))
        return (self.last_day and day == end) or (self.last_workday and day == workday)

    def _on_weekday(self, day: date) -> bool:
        """Whether the day-of-week field matches ``day``."""
        weekday = day.isoweekday() % 7
        if weekday in self.weekdays or (weekday, (day.day + 6) // 7) in self.nth_weekdays:
            return True
        return weekday in self.last_weekdays and (day + _WEEK).month != day.month


def _month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    if day.month == 12:
        return day.replace(day=31)
    return day.replace(month=day.month + 1, day=1) - _DAY


def _values(field: list[int | Literal["*", "l"]], low: int, high: int) -> tuple[int, ...]:
    """The numbers a croniter-expanded field allows."""
    if field == ["*"]:
        return tuple(range(low, high + 1))
    return tuple(sorted(value for value in field if isinstance(value, int)))


def _cron_fields(expression: str) -> list[str]:
    """The five fields of ``expression`` (macros expanded); ValueError for other shapes."""
    text = expression.strip()
    if text.startswith("@"):
        macro = _MACROS.get(text.lower())
        if macro is None:
            known = ", ".join(_MACROS)
            raise ValueError(f"unsupported cron macro {text!r}; use one of {known}")
        return macro.split()
    fields = text.split()
    if len(fields) != 5:
        extra = "; seconds and year fields are not supported" if len(fields) in (6, 7) else ""
        raise ValueError(
            f"cron expression {expression!r} has {len(fields)} fields; "
            f"it needs 5 ({_CRON_FIELDS}){extra}"
        )
    return fields


def cron_fields(expression: str) -> list[str]:
    """The five fields of a valid cron ``expression``, macros such as ``@daily`` expanded."""
    return _cron_fields(expression)


@dataclass(frozen=True, slots=True)
class _DayForms:
    """The day terms croniter does not read, split off the two day fields."""

    days: str  # the rest of day-of-month, for croniter ("" if nothing is left)
    last_workday: bool
    weekdays: str  # the rest of day-of-week, for croniter ("" if nothing is left)
    nth: frozenset[tuple[int, int]]
    last: frozenset[int]


def _day_forms(day_field: str, weekday_field: str) -> _DayForms:
    """Split ``LW`` off day-of-month and ``N#K``/``NL`` off day-of-week; ValueError if bad."""
    days = [term for term in day_field.split(",") if term.lower() != "lw"]
    if any("w" in term.lower() for term in days):
        raise ValueError(
            "W (nearest weekday) is not supported in day-of-month; "
            "LW (the last weekday of the month) is"
        )
    weekdays, nth, last = [], set(), set()
    for term in weekday_field.split(","):
        lower = term.lower()
        if "#" in lower:
            day, _, k = lower.partition("#")
            nth.add((_weekday(day, term), _nth(k, term)))
        elif lower.endswith("l"):
            last.add(_weekday(lower[:-1], term))
        else:
            weekdays.append(term)
    return _DayForms(
        days=",".join(days),
        last_workday=len(days) < len(day_field.split(",")),
        weekdays=",".join(weekdays),
        nth=frozenset(nth),
        last=frozenset(last),
    )


def _weekday(text: str, term: str) -> int:
    """Weekday ``text`` (0-7 or sun-sat) as 0-6 from Sunday; ValueError naming ``term``."""
    if text in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES.index(text)
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7
    raise ValueError(
        f"day-of-week {term!r}: {text!r} is not one weekday (0-7 or sun-sat); "
        "N#K and NL take a single weekday N, e.g. 2#2 (the 2nd Tuesday), 5L (the last Friday)"
    )


def _nth(text: str, term: str) -> int:
    """The K of ``N#K``, 1 to 5; ValueError naming ``term``."""
    if text.isdigit() and 1 <= int(text) <= 5:
        return int(text)
    raise ValueError(
        f"day-of-week {term!r}: the K of N#K must be 1 to 5 (N#K is the K-th weekday N "
        "of the month, e.g. 2#2 is the 2nd Tuesday)"
    )


@lru_cache(maxsize=4096)
def _plan(expression: str) -> _CronPlan:
    """Parse ``expression`` (croniter's syntax, restricted and extended); ValueError if invalid."""
    fields = _cron_fields(expression)
    try:
        forms = _day_forms(fields[2], fields[4])
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None
    plain = [*fields[:2], forms.days or "*", fields[3], forms.weekdays or "*"]
    simple = [_simple_values(f, low, high) for f, (low, high) in zip(plain, _RANGES, strict=True)]
    if None in simple:
        expanded = _croniter_values(expression, plain)
    else:
        expanded = [(v, False) for v in simple if v is not None]
    (minutes, _), (hours, _), (days, last_day), (months, _), (weekdays, _) = expanded
    return _CronPlan(
        minutes=minutes,
        hours=hours,
        days=frozenset(days if forms.days else ()),
        last_day=last_day,
        last_workday=forms.last_workday,
        months=frozenset(months),
        weekdays=frozenset(weekdays if forms.weekdays else ()),
        nth_weekdays=forms.nth,
        last_weekdays=forms.last,
        # Vixie cron: the two day fields combine with OR unless either starts with a star.
        day_or=not fields[2].startswith(("*", "?")) and not fields[4].startswith(("*", "?")),
        wildcard_hour=fields[1].startswith("*"),
    )


# The range of each of the five fields, as croniter reads them (day-of-week from Sunday).
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_SIMPLE_TERM = re.compile(r"(?:\*|([0-9]+)(?:-([0-9]+))?)(?:/([0-9]+))?")


def _simple_values(field: str, low: int, high: int) -> tuple[int, ...] | None:
    """What a simple field allows: ``*``, a number, a range or a step (``7``, ``1-5``,
    ``*/15``, ``10-40/10``) or a list of numbers (``0,30``), as croniter reads it but
    without it (its parse is most of the time of checking a thousand distinct crons).
    None for anything else (names, ``L``, other lists, a range that wraps, a step without
    a range, a number out of range), which croniter reads and judges: it reads some
    lists its own way (``*,13`` allows 13 alone)."""
    terms = field.split(",")
    if len(terms) > 1 and not all(term.isascii() and term.isdigit() for term in terms):
        return None
    allowed: set[int] = set()
    for term in terms:
        match = _SIMPLE_TERM.fullmatch(term)
        if match is None:
            return None
        first, last, step = match.groups()
        if first is not None and last is None and step is not None:
            return None  # "5/15": croniter's own reading
        start = low if first is None else int(first)
        end = high if first is None else int(last or first)
        every = int(step or 1)
        if not low <= start <= end <= high or every < 1 or (last and start == end):
            return None  # out of range, no step, or a range of one (croniter: "all")
        allowed.update(range(start, end + 1, every))
    return tuple(sorted(allowed))


def _croniter_values(expression: str, plain: list[str]) -> list[tuple[tuple[int, ...], bool]]:
    """The values each of the five ``plain`` fields allows, and whether it holds ``L``, as
    croniter expands them; ValueError naming ``expression`` where croniter refuses it."""
    try:
        expanded, nth = croniter.expand(" ".join(plain))
    except CroniterError as exc:
        reason = "H (hashed) values are not supported" if "hash" in str(exc).lower() else exc
        raise ValueError(f"invalid cron expression {expression!r}: {reason}") from None
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None
    if nth:  # croniter's own nth forms never remain: _day_forms took every "#"
        raise ValueError(f"invalid cron expression {expression!r}")
    return [
        (_values(field, low, high), "l" in field)
        for field, (low, high) in zip(expanded, _RANGES, strict=True)
    ]


def _next_real(plan: _CronPlan, t: datetime, zone: ZoneInfo) -> datetime | None:
    """The wildcard-hour rule: the first real instant after ``t`` whose wall time matches.

    Walks real time in stretches of constant UTC offset, where wall time is instant + offset.
    """
    start, offset = t, _offset(t, zone)
    wall = plan.next_wall((t + offset).replace(tzinfo=None))
    while wall is not None:
        fire = (wall - offset).replace(tzinfo=UTC)
        change = _next_change(start, fire, zone)
        if change is None:
            return fire
        # Continue from the change with the new offset, including its first wall time: after
        # a fall-back the wall clock re-walks the repeated hour; a skipped hour has no instants.
        start, offset = change, _offset(change, zone)
        wall = plan.next_wall((change + offset).replace(tzinfo=None) - _TICK)
    return None


def check_cron(expression: str) -> str | None:
    """None if ``expression`` is a valid 5-field cron (or a macro such as ``@daily``) that
    fires at all; else a plain message saying why not.

    The syntax is croniter's minus its extensions (no seconds or year field, no ``@reboot``,
    no ``H``, no ``W`` but in ``LW``) plus the day forms cronsim reads: ``L`` (the last day)
    and ``LW`` (the last Monday-Friday) in day-of-month; ``N#K`` (the K-th weekday N of the
    month, K 1-5) and ``NL`` (the last weekday N of the month) in day-of-week. When both day
    fields are restricted (neither starts with ``*``), a day matching either fires (Vixie
    cron's rule); a ``5#5`` in a month without a fifth Friday is simply no fire.
    """
    if not isinstance(expression, str):
        return "cron must be a string such as '0 9 * * *'"
    try:
        plan = _plan(expression)
    except ValueError as exc:
        return str(exc)
    if plan.next_wall(_CHECK_FROM) is None:
        return f"{expression!r} never fires"
    return None


def cron_days_in_words(expression: str) -> str | None:
    """The days a valid cron fires on, in words, when it uses ``L``, ``LW``, ``N#K`` or ``NL``
    (e.g. "the 2nd Tuesday of each month"); None for other crons. ValueError if invalid."""
    plan = _plan(expression)
    if not (plan.last_day or plan.last_workday or plan.nth_weekdays or plan.last_weekdays):
        return None
    month_days, weekdays = _month_day_words(plan), _weekday_words(plan)
    if plan.day_or or not (month_days and weekdays):
        words = " or ".join([*month_days, *weekdays])
    else:  # day-of-month starts with a star but is not one: both fields must match
        words = f"{' or '.join(month_days)}, when it is also {' or '.join(weekdays)}"
    if len(plan.months) < 12:
        words += ", in " + ", ".join(_MONTH_NAMES[m - 1] for m in sorted(plan.months))
    return words


def _month_day_words(plan: _CronPlan) -> list[str]:
    if len(plan.days) == 31:
        return ["any day"] if plan.day_or else []
    words = [f"day {', '.join(str(d) for d in sorted(plan.days))}"] if plan.days else []
    if plan.last_day:
        words.append("the last day of the month")
    if plan.last_workday:
        words.append("the last weekday (Monday to Friday) of the month")
    return words


def _weekday_words(plan: _CronPlan) -> list[str]:
    if len(plan.weekdays) == 7:
        return ["any day"] if plan.day_or else []
    names = [_DAY_NAMES[d] for d in sorted(plan.weekdays)]
    words = [f"every {', '.join(names)}"] if names else []
    for weekday, k in sorted(plan.nth_weekdays, key=lambda nk: (nk[1], nk[0])):
        words.append(f"the {k}{_ORDINAL[k]} {_DAY_NAMES[weekday]} of each month")
    words.extend(f"the last {_DAY_NAMES[d]} of each month" for d in sorted(plan.last_weekdays))
    return words


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Cron:
    """Fires when the wall clock of ``zone`` matches ``expression``.

    Crons whose hour field starts with ``*`` follow the wildcard-hour rule, others the
    fixed-time rule (see the module docstring). Construction raises ValueError for an
    invalid expression; use :func:`check_cron` to also reject crons that never fire.
    """

    expression: str
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str):
            raise ValueError("cron must be a string such as '0 9 * * *'")
        _plan(self.expression)

    def next_after(self, t: datetime) -> datetime | None:
        """The first fire strictly after aware ``t``, in UTC; None if it never fires again."""
        t = _utc(t)
        plan = _plan(self.expression)
        if plan.wildcard_hour:
            return _next_real(plan, t, self.zone)
        return _next_fixed(plan.next_wall, t, self.zone)


@dataclass(frozen=True)
class Every:
    """Fires every ``amount`` ``unit`` from ``start`` (an occurrence itself).

    Without a start, counts from 2000-01-01 00:00 local (Monday 2000-01-03 for weeks).
    Seconds, minutes and hours are exact elapsed time; days and weeks are whole wall-clock
    days and months are calendar months keeping the start's day (clamped to the month's
    length), all fired by the fixed-time rule.
    """

    amount: int
    unit: Unit
    zone: ZoneInfo
    start: datetime | None = None

    def __post_init__(self) -> None:
        _check_period(self.amount, self.unit)
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError(f"start {self.start.isoformat()} has no time zone")

    def next_after(self, t: datetime) -> datetime | None:
        """The first fire strictly after aware ``t``, in UTC (never None)."""
        t = _utc(t)
        first, first_wall = self._origin()
        if t < first:
            return first
        if self.unit in _ELAPSED_UNITS:
            period = self._period()
            return first + ((t - first) // period + 1) * period
        return _next_fixed(partial(self._wall_after, first_wall), t, self.zone)

    def _origin(self) -> tuple[datetime, datetime]:
        """Occurrence 0: its instant (UTC) and its wall time."""
        if self.start is not None:
            return self.start.astimezone(UTC), _wall(self.start, self.zone)
        wall = _WEEK_ANCHOR if self.unit == "weeks" else _ANCHOR
        return _anchor_instant(wall, self.zone), wall

    def _period(self) -> timedelta:
        if self.unit == "months":
            raise ValueError("months have no fixed length")
        return timedelta(**{self.unit: self.amount})

    def _wall_after(self, origin: datetime, wall: datetime) -> datetime:
        """The wall time of the first occurrence after occurrence 0 strictly after ``wall``."""
        # Start from an index at or just below the answer (floor division), then step up.
        if self.unit == "months":
            months = (wall.year - origin.year) * 12 + wall.month - origin.month
            index = max(1, months // self.amount)
        else:
            index = max(1, (wall - origin) // self._period())
        while (candidate := self._wall_at(origin, index)) <= wall:
            index += 1
        return candidate

    def _wall_at(self, origin: datetime, index: int) -> datetime:
        """The wall time of occurrence ``index``, computed from occurrence 0 (no drift)."""
        if self.unit == "months":
            return _add_months(origin, index * self.amount)
        return origin + index * self._period()


@dataclass(frozen=True)
class At:
    """Fires once, at ``at``."""

    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"at {self.at.isoformat()} has no time zone")

    def next_after(self, t: datetime) -> datetime | None:
        """``at`` in UTC if it is strictly after aware ``t``, else None."""
        at = self.at.astimezone(UTC)
        return at if at > _utc(t) else None


Schedule = Cron | Every | At


@lru_cache(maxsize=1024)
def _anchor_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """:func:`_instant`, cached for the few default anchors ``every`` counts from."""
    return _instant(wall, zone)


def _add_months(wall: datetime, months: int) -> datetime:
    """``wall`` moved by ``months`` calendar months, its day clamped to the month's length."""
    index = wall.month - 1 + months
    year, month = wall.year + index // 12, index % 12 + 1
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    return wall.replace(year=year, month=month, day=min(wall.day, (first_of_next - _DAY).day))


def _check_period(amount: object, unit: object) -> tuple[int, Unit]:
    """``(amount, unit)`` if they make a supported period; else ValueError."""
    if not isinstance(unit, str) or unit not in _UNITS:
        raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(_UNITS)}")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError(f"every needs a positive whole number of {unit}, got {amount!r}")
    if amount > _MAX_AMOUNT[unit]:
        raise ValueError(f"every {amount} {unit} is too long; the longest period is 100 years")
    return amount, _UNITS[unit]


# --------------------------------------------------------------------------- parsing


def parse_every(value: str | Mapping[str, int]) -> tuple[int, Unit]:
    """``"15m"`` -> ``(15, "minutes")``; also ``{"minutes": 15}``.

    Suffixes are exactly s, m, h, d, w and mo. Raises ValueError with a plain message.
    """
    if isinstance(value, str):
        match = _EVERY_RE.fullmatch(value.strip())
        if match is None or int(match[1]) == 0:
            raise ValueError(f"{_EVERY_HELP} (got {value!r})")
        return _check_period(int(match[1]), _SUFFIXES[match[2]])
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in _UNITS:
            raise ValueError(
                f"every as a mapping needs exactly one of {', '.join(_UNITS)}, e.g. {{minutes: 15}}"
            )
        ((unit, amount),) = value.items()
        return _check_period(amount, unit)
    raise ValueError(f"{_EVERY_HELP} (got {value!r})")


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC instant.

    With an offset (``2026-12-01T10:00:00+01:00``, ``...Z``) it is that instant; without
    (``2026-11-30T09:00``, ``2026-11-30 09:00``, ``2026-11-30``) it is a wall time in ``zone``:
    one that occurs twice means the first occurrence, one that does not exist is an error.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 date or time string, got {text!r}")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or time, "
            "e.g. 2026-11-30T09:00 or 2026-12-01T10:00:00+01:00"
        ) from None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    fire = _instant(value, zone)
    if _wall(fire, zone) != value:
        before, after = _wall(fire - _TICK, zone) + _TICK, _wall(fire, zone)
        raise ValueError(
            f"{text.strip()!r} does not exist in {zone}: "
            f"the clock jumps from {clock_time(before)} to {clock_time(after)} that day"
        )
    return fire


def _zone(name: object) -> ZoneInfo:
    """The IANA zone called ``name``; ValueError if there is none."""
    if isinstance(name, str):
        try:
            return ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            pass
    raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin")


def _spec_time(value: object, zone: ZoneInfo, key: str) -> datetime:
    """A time from config: a string, or the date/datetime YAML makes of an unquoted one."""
    if isinstance(value, datetime | date):
        value = value.isoformat()
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a date or time such as 2026-11-30T09:00, got {value!r}")
    try:
        return parse_time(value, zone)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def from_spec(spec: Mapping[str, Any], default_zone: str = "UTC") -> Schedule:
    """The schedule a config mapping declares; ValueError with a plain message if it is bad.

    ``spec`` holds exactly one of ``cron`` (a string), ``every`` (see :func:`parse_every`,
    with an optional ``start``) or ``at`` (see :func:`parse_time`), plus an optional
    ``timezone`` (IANA name, default ``default_zone``) for cron and for times without offset.
    """
    if not isinstance(spec, Mapping):
        raise ValueError("a schedule must be a mapping with one of cron, every or at")
    kinds = [kind for kind in ("cron", "every", "at") if kind in spec]
    if len(kinds) != 1:
        found = f" (got {' and '.join(kinds)})" if kinds else ""
        raise ValueError(f"a schedule needs exactly one of cron, every or at{found}")
    kind = kinds[0]
    allowed = {kind, "timezone", "start"} if kind == "every" else {kind, "timezone"}
    unknown = sorted(str(key) for key in spec if key not in allowed)
    if unknown:
        hint = "; start is only allowed with every" if "start" in unknown else ""
        raise ValueError(f"unexpected schedule key {', '.join(unknown)}{hint}")
    zone_name = spec.get("timezone")
    zone = _zone(default_zone if zone_name is None else zone_name)
    if kind == "cron":
        problem = check_cron(spec["cron"])
        if problem is not None:
            raise ValueError(problem)
        return Cron(spec["cron"], zone)
    if kind == "every":
        amount, unit = parse_every(spec["every"])
        start = spec.get("start")
        first = None if start is None else _spec_time(start, zone, "start")
        return Every(amount, unit, zone, first)
    return At(_spec_time(spec["at"], zone, "at"))


# --------------------------------------------------------------------------- queries


def fire_times(schedule: Schedule, after: datetime, n: int) -> list[datetime]:
    """Up to ``n`` fire times strictly after ``after``, in order, in UTC."""
    times: list[datetime] = []
    current = after
    for _ in range(n):
        fire = schedule.next_after(current)
        if fire is None:
            break
        times.append(fire)
        current = fire
    return times


@dataclass(frozen=True)
class ClockChange:
    """A change of ``zone``'s UTC offset, and the wall times of a schedule it affects.

    ``walls`` are the schedule's wall times that the change skips (clocks go forward) or
    repeats (clocks go back), in order. ``rule`` says what happens to them: ``fixed`` (a
    skipped one fires when the clock jumps, a repeated one once, the first time), ``real``
    (wildcard-hour crons: a skipped one does not fire, a repeated one fires in both passes)
    or ``elapsed`` (``every`` in seconds, minutes or hours: no wall times, exact spacing).
    """

    at: datetime  # the instant of the change, UTC
    zone: ZoneInfo
    before: timedelta
    after: timedelta
    walls: tuple[datetime, ...]
    rule: Literal["fixed", "real", "elapsed"]

    @property
    def forward(self) -> bool:
        """Whether the clocks go forward (skip wall times) rather than back (repeat them)."""
        return self.after > self.before


def clock_changes_for(schedule: Schedule, start: datetime, end: datetime) -> list[ClockChange]:
    """Each offset change of ``schedule``'s zone in ``(start, end]`` (see
    :func:`clock_changes`) and what it does to the schedule's wall times. Empty for
    :class:`At` and for zones without changes."""
    if isinstance(schedule, At):
        return []
    step, rule = _wall_stepper(schedule)
    found = []
    for change, before, after in clock_changes(schedule.zone, start, end):
        # Skipped walls are [change+before, change+after); repeated, [change+after, change+before).
        low, high = (t.replace(tzinfo=None) for t in sorted((change + before, change + after)))
        walls = () if step is None else tuple(_walls_between(step, low, high))
        found.append(ClockChange(change, schedule.zone, before, after, walls, rule))
    return found


def dst_notes(schedule: Schedule, after: datetime, horizon_days: int = 366) -> list[str]:
    """Notes on fires in the ``horizon_days`` after ``after`` that a clock change moves.

    Only fixed-time schedules (crons whose hour field does not start with ``*``, ``every``
    in days, weeks or months) get notes: one per clock change that skips or repeats one of
    their wall times. Empty for zones without changes. Meant as validation warnings.
    """
    start = _utc(after)
    return [
        _note(str(c.zone), c.at, c.before, c.after, list(c.walls))
        for c in clock_changes_for(schedule, start, start + timedelta(days=horizon_days))
        if c.rule == "fixed" and c.walls
    ]


def _wall_stepper(
    schedule: Cron | Every,
) -> tuple[_WallStep | None, Literal["fixed", "real", "elapsed"]]:
    """The wall-time stepper of ``schedule`` (None for elapsed time) and its DST rule."""
    if isinstance(schedule, Cron):
        plan = _plan(schedule.expression)
        return plan.next_wall, "real" if plan.wildcard_hour else "fixed"
    if schedule.unit in _ELAPSED_UNITS:
        return None, "elapsed"
    return partial(schedule._wall_after, schedule._origin()[1]), "fixed"


def _walls_between(step: _WallStep, low: datetime, high: datetime) -> Iterator[datetime]:
    """The wall times ``step`` yields in ``[low, high)``."""
    wall = step(low - _TICK)
    while wall is not None and wall < high:
        yield wall
        wall = step(wall)


def _note(
    zone: str, change: datetime, before: timedelta, after: timedelta, walls: list[datetime]
) -> str:
    """A note on ``walls``, skipped or repeated by the change of offset at instant ``change``."""
    where = f"in {zone} on {walls[0].date().isoformat()}"
    listed = walls_in_words(walls)
    if after > before:
        jump = f"{clock_time(change + after)} ({clock_time(change)}Z)"
        if len(walls) == 1:
            return f"{listed} does not exist {where}; runs at {jump} instead"
        return f"{listed} do not exist {where}; they run once, at {jump}, instead"
    if len(walls) == 1:
        first = walls[0] - before  # the first pass runs on the offset from before the change
        return f"{listed} occurs twice {where}; runs once, at the first ({clock_time(first)}Z)"
    return f"{listed} occur twice {where}; each runs once, at the first"


def walls_in_words(walls: list[datetime] | tuple[datetime, ...]) -> str:
    """``02:00``, ``02:00 and 02:30``, ``02:00, 02:20 and 02:40``, ``12 times from ...``."""
    clocks = [clock_time(wall) for wall in walls]
    if len(clocks) > 4:
        return f"{len(clocks)} times from {clocks[0]} to {clocks[-1]}"
    if len(clocks) == 1:
        return clocks[0]
    return f"{', '.join(clocks[:-1])} and {clocks[-1]}"


def clock_time(t: datetime) -> str:
    """``HH:MM``, or ``HH:MM:SS`` when there are seconds."""
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")
