"""Slow, obviously-correct references for the schedule tests: minute-by-minute walks of
the contract's DST rules over the wall times cronsim lists, and brute-force clock changes."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim
from hypothesis import strategies as st

MINUTE = timedelta(minutes=1)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
    "Pacific/Chatham",
]
SPAN_START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2031, 1, 1, tzinfo=UTC) - SPAN_START).total_seconds())
NEAR = 2 * 86400


@functools.cache
def zone_changes(name: str) -> list[datetime]:
    """Every UTC offset change of zone ``name`` in 2025-2030, found by a plain scan."""
    zone, changes = ZoneInfo(name), []
    day = SPAN_START
    while day < SPAN_START + timedelta(seconds=SPAN_SECONDS):
        nxt = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            minute = day
            while minute.astimezone(zone).utcoffset() == day.astimezone(zone).utcoffset():
                minute += MINUTE
            changes.append(minute)
        day = nxt
    return changes


@st.composite
def instants(draw: st.DrawFn, zone_name: str) -> datetime:
    """Mostly within two days of one of the zone's clock changes, else anywhere in 2025-2030."""
    changes = zone_changes(zone_name)
    if changes and draw(st.integers(0, 3)) > 0:
        base = draw(st.sampled_from(changes))
        t = base + timedelta(seconds=draw(st.integers(-NEAR, NEAR)))
    else:
        t = SPAN_START + timedelta(seconds=draw(st.integers(0, SPAN_SECONDS)))
    if draw(st.booleans()):
        t = t.replace(second=0)  # fires fall on whole minutes: test "strictly after" there
    return t


@st.composite
def near_a_change(draw: st.DrawFn, zone_name: str) -> tuple[datetime, time]:
    """An instant and a time of day, mostly both within hours of the same clock change."""
    changes = zone_changes(zone_name)
    if not changes or draw(st.integers(0, 3)) == 0:
        return draw(instants(zone_name)), draw(st.times())
    change = draw(st.sampled_from(changes))
    before = (change - MINUTE).astimezone(ZoneInfo(zone_name)).utcoffset()
    assert before is not None
    near = (change + before).replace(tzinfo=None) + timedelta(minutes=draw(st.integers(-60, 60)))
    return change + timedelta(seconds=draw(st.integers(-NEAR, NEAR))), near.time()


class CronWalls:
    """Membership in a cron's matching wall times, listed lazily by cronsim.

    On naive datetimes cronsim applies no DST rule: it lists every matching wall time, and
    the references below apply the contract's rules to them.
    """

    def __init__(self, expression: str, start: datetime) -> None:
        self._iter = CronSim(expression, start)
        self._seen: set[datetime] = set()
        self._frontier = start

    def __contains__(self, wall_time: object) -> bool:
        assert isinstance(wall_time, datetime)
        while self._frontier < wall_time:
            self._frontier = next(self._iter)
            self._seen.add(self._frontier)
        return wall_time in self._seen


def reference_cron_next(expression: str, zone: ZoneInfo, t: datetime) -> datetime:
    """The contract, applied to every real minute after ``t`` until one fires."""
    wildcard_hour = expression.split()[1].startswith("*")
    matching = CronWalls(expression, t.astimezone(zone).replace(tzinfo=None) - timedelta(days=1))
    u = t.replace(second=0, microsecond=0) + MINUTE
    previous = (u - MINUTE).astimezone(zone).utcoffset()
    assert previous is not None
    for _ in range(45 * 24 * 60):
        local = u.astimezone(zone)
        offset = local.utcoffset()
        assert offset is not None
        wall_time = local.replace(tzinfo=None)
        if wildcard_hour:
            fired = wall_time in matching
        else:
            first_pass = wall_time.replace(tzinfo=zone, fold=0).astimezone(UTC) == u
            fired = first_pass and wall_time in matching
            if offset > previous:  # the clock jumped forward at u over [u+previous, u+offset)
                skipped = (u + previous).replace(tzinfo=None)
                while not fired and skipped < wall_time:
                    fired = skipped in matching
                    skipped += MINUTE
        if fired:
            return u
        previous, u = offset, u + MINUTE
    raise AssertionError("reference found no fire")


def reference_instant(wall_time: datetime, zone: ZoneInfo) -> datetime:
    """The fixed-time rule, by brute force: the first occurrence, or the jump over a gap."""
    first = wall_time.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall_time:
        return first
    # Read with the offset after the jump, the wall time lands before it; clock changes fall
    # on whole minutes, so walk minutes from there until the offset changes.
    u = wall_time.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    before = u.astimezone(zone).utcoffset()
    while u.astimezone(zone).utcoffset() == before:
        u += MINUTE
    return u
