"""Tests for runner.schedules: the contract examples, parsing, and properties checked
against slow, obviously-correct references (minute-by-minute walks, simple stepping)."""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import schedules
from runner.schedules import (
    At,
    Cron,
    Every,
    Schedule,
    Unit,
    check_cron,
    dst_notes,
    fire_times,
    from_spec,
    parse_every,
    parse_time,
)
from tests.unit.schedule_reference import (
    ZONES,
    instants,
    near_a_change,
    reference_cron_next,
    reference_instant,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")
MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    """An aware UTC instant from ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text + "+00:00")


def wall(text: str) -> datetime:
    """A naive wall time from ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text)


def fires(schedule: Schedule, after: str, n: int) -> list[datetime]:
    return fire_times(schedule, utc(after), n)


# --------------------------------------------------------------------------- contract examples


def test_fixed_cron_fires_a_skipped_time_when_the_clock_jumps() -> None:
    # Berlin jumps 02:00 -> 03:00 CEST at 01:00Z on 2027-03-28; 02:00 does not exist that day.
    assert fires(Cron("0 2 * * *", BERLIN), "2027-03-27T12:00", 2) == [
        utc("2027-03-28T01:00"),
        utc("2027-03-29T00:00"),
    ]


def test_fixed_cron_fires_a_repeated_time_once_at_its_first_occurrence() -> None:
    cron = Cron("30 2 * * *", BERLIN)
    assert fires(cron, "2027-10-30T12:00", 2) == [
        utc("2027-10-31T00:30"),
        utc("2027-11-01T01:30"),
    ]
    # From inside the second pass of the repeated hour (02:15 CET = 01:15Z).
    assert cron.next_after(utc("2027-10-31T01:15")) == utc("2027-11-01T01:30")
    second_pass = datetime(2027, 10, 31, 2, 15, fold=1, tzinfo=BERLIN)
    assert cron.next_after(second_pass) == utc("2027-11-01T01:30")


def test_croniter_alone_gets_fall_back_wrong() -> None:
    # Why the module maps wall times itself: with aware datetimes croniter fires twice.
    start = utc("2027-10-30T12:00").astimezone(BERLIN)
    it = croniter("30 2 * * *", start)
    twice = [it.get_next(datetime).astimezone(UTC) for _ in range(2)]
    assert twice == [utc("2027-10-31T00:30"), utc("2027-10-31T01:30")]


def test_several_skipped_times_collapse_into_one_fire() -> None:
    assert fires(Cron("*/15 2 * * *", BERLIN), "2027-03-27T12:00", 2) == [
        utc("2027-03-28T01:00"),
        utc("2027-03-29T00:00"),
    ]


@pytest.mark.parametrize("expression", ["0 * * * *", "@hourly"])
@pytest.mark.parametrize("after", ["2027-10-30T22:30", "2027-03-27T22:30"])
def test_wildcard_hour_cron_fires_every_real_hour(expression: str, after: str) -> None:
    start = utc(after).replace(minute=0) + timedelta(hours=1)
    expected = [start + timedelta(hours=k) for k in range(6)]
    assert fires(Cron(expression, BERLIN), after, 6) == expected


def test_wildcard_hour_cron_fires_in_both_passes_of_a_repeated_hour() -> None:
    # 02:30 CEST (00:30Z) and 02:30 CET (01:30Z) are both real instants reading 02:30.
    assert fires(Cron("30 * * * *", BERLIN), "2027-10-31T00:00", 3) == [
        utc("2027-10-31T00:30"),
        utc("2027-10-31T01:30"),
        utc("2027-10-31T02:30"),
    ]


def test_wildcard_hour_cron_skips_a_skipped_hour() -> None:
    # 02:30 does not exist on 2027-03-28: after 01:30 CET (00:30Z) comes 03:30 CEST (01:30Z).
    assert fires(Cron("30 * * * *", BERLIN), "2027-03-28T00:00", 2) == [
        utc("2027-03-28T00:30"),
        utc("2027-03-28T01:30"),
    ]


@pytest.mark.parametrize("expression", ["@daily", "@midnight", "0 0 * * *"])
def test_daily_macro_stays_at_local_midnight(expression: str) -> None:
    assert fires(Cron(expression, BERLIN), "2027-03-27T12:00", 2) == [
        utc("2027-03-27T23:00"),
        utc("2027-03-28T22:00"),
    ]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("@weekly", "2027-01-01T00:00", "2027-01-03T00:00"),  # a Sunday
        ("@monthly", "2027-01-01T00:00", "2027-02-01T00:00"),
        ("@yearly", "2027-01-01T00:00", "2028-01-01T00:00"),
        ("@annually", "2027-01-01T00:00", "2028-01-01T00:00"),
        ("0 0 L * *", "2028-02-01T00:00", "2028-02-29T00:00"),
        ("0 0 29 2 *", "2097-01-01T00:00", "2104-02-29T00:00"),  # 2100 is no leap year
    ],
)
def test_calendar_crons(expression: str, after: str, expected: str) -> None:
    assert Cron(expression, UTC_ZONE).next_after(utc(after)) == utc(expected)


def test_cron_that_never_fires() -> None:
    assert Cron("0 0 30 2 *", UTC_ZONE).next_after(utc("2027-01-01T00:00")) is None
    assert Cron("0 * 31 4 *", BERLIN).next_after(utc("2027-01-01T00:00")) is None


def test_cron_reads_its_fields_on_the_zone_wall_clock() -> None:
    cron = Cron("0 9 * * 1", ZoneInfo("America/New_York"))  # Mondays 09:00 local
    assert fires(cron, "2027-03-05T00:00", 2) == [
        utc("2027-03-08T14:00"),  # EST
        utc("2027-03-15T13:00"),  # EDT
    ]


# --------------------------------------------------------------------------- other zones


def test_thirty_minute_dst_lord_howe() -> None:
    zone = ZoneInfo("Australia/Lord_Howe")
    # 2027-04-04: 02:00 (+11) -> 01:30 (+10:30) at 15:00Z; 01:30-02:00 occurs twice.
    assert fires(Cron("45 1 * * *", zone), "2027-04-03T12:00", 2) == [
        utc("2027-04-03T14:45"),
        utc("2027-04-04T15:15"),
    ]
    # 2027-10-03: 02:00 (+10:30) -> 02:30 (+11) at 15:30Z; 02:15 does not exist.
    assert fires(Cron("15 2 * * *", zone), "2027-10-02T12:00", 2) == [
        utc("2027-10-02T15:30"),
        utc("2027-10-03T15:15"),
    ]
    # Every real half hour reading :00 or :30 fires, including the repeated 01:30 (15:00Z).
    assert fires(Cron("*/30 * * * *", zone), "2027-04-03T14:10", 3) == [
        utc("2027-04-03T14:30"),
        utc("2027-04-03T15:00"),
        utc("2027-04-03T15:30"),
    ]


def test_southern_hemisphere_sydney() -> None:
    cron = Cron("30 2 * * *", ZoneInfo("Australia/Sydney"))
    # April: 03:00 AEDT -> 02:00 AEST at 16:00Z; 02:30 fires at its first occurrence.
    assert fires(cron, "2027-04-03T00:00", 2) == [
        utc("2027-04-03T15:30"),
        utc("2027-04-04T16:30"),
    ]
    # October: 02:00 AEST -> 03:00 AEDT at 16:00Z; 02:30 fires at the jump.
    assert fires(cron, "2027-10-02T00:00", 2) == [
        utc("2027-10-02T16:00"),
        utc("2027-10-03T15:30"),
    ]


def test_santiago_skips_and_repeats_around_midnight() -> None:
    zone = ZoneInfo("America/Santiago")
    # 2027-09-05 00:00 does not exist (24:00 -> 01:00 at 04:00Z).
    assert Cron("@daily", zone).next_after(utc("2027-09-04T12:00")) == utc("2027-09-05T04:00")
    assert Every(1, "days", zone).next_after(utc("2027-09-04T12:00")) == utc("2027-09-05T04:00")
    # 2027-04-03 23:00-24:00 occurs twice (24:00 -> 23:00 at 03:00Z).
    assert fires(Cron("30 23 * * *", zone), "2027-04-03T12:00", 2) == [
        utc("2027-04-04T02:30"),
        utc("2027-04-05T03:30"),
    ]


# --------------------------------------------------------------------------- every and at


def test_monthly_keeps_the_start_day_clamped_to_the_month() -> None:
    every = Every(1, "months", UTC_ZONE, start=utc("2027-01-31T00:00"))
    assert fires(every, "2027-01-01T00:00", 5) == [
        utc("2027-01-31T00:00"),
        utc("2027-02-28T00:00"),
        utc("2027-03-31T00:00"),
        utc("2027-04-30T00:00"),
        utc("2027-05-31T00:00"),
    ]
    assert every.next_after(utc("2028-02-01T00:00")) == utc("2028-02-29T00:00")
    assert every.next_after(utc("2028-02-29T00:00")) == utc("2028-03-31T00:00")


def test_monthly_follows_the_wall_clock() -> None:
    every = Every(2, "months", BERLIN, start=parse_time("2027-01-31T09:00", BERLIN))
    assert fires(every, "2027-02-01T00:00", 2) == [
        utc("2027-03-31T07:00"),  # 09:00 CEST
        utc("2027-05-31T07:00"),
    ]


def test_weekly_stays_at_local_time_across_dst() -> None:
    every = Every(1, "weeks", BERLIN, start=parse_time("2027-03-15T09:00", BERLIN))
    assert fires(every, "2027-03-01T00:00", 3) == [
        utc("2027-03-15T08:00"),
        utc("2027-03-22T08:00"),
        utc("2027-03-29T07:00"),
    ]
    assert fires(Cron("0 9 * * 1", BERLIN), "2027-10-20T00:00", 2) == [
        utc("2027-10-25T07:00"),
        utc("2027-11-01T08:00"),
    ]


@pytest.mark.parametrize("after", ["2027-03-27T20:00", "2027-10-30T20:00"])
def test_hours_are_exact_elapsed_time_across_dst(after: str) -> None:
    times = fires(Every(2, "hours", BERLIN), after, 6)
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
    assert gaps == {7200.0}
    # Anchored at 2000-01-01 00:00 CET = 23:00Z: odd UTC hours, whatever the local time.
    assert {t.hour % 2 for t in times} == {1}


@pytest.mark.parametrize(
    ("every", "after", "expected"),
    [
        (Every(15, "minutes", ZoneInfo("Asia/Kolkata")), "2027-05-05T10:07", "2027-05-05T10:15"),
        (Every(1, "days", BERLIN), "2027-07-01T12:00", "2027-07-01T22:00"),
        (Every(1, "weeks", UTC_ZONE), "2027-05-05T10:00", "2027-05-10T00:00"),  # Monday
        (Every(1, "months", BERLIN), "2027-05-05T10:00", "2027-05-31T22:00"),
        (Every(30, "seconds", UTC_ZONE), "2027-05-05T10:00", "2027-05-05T10:00:30"),
    ],
)
def test_default_anchors(every: Every, after: str, expected: str) -> None:
    assert every.next_after(utc(after)) == utc(expected)


@pytest.mark.parametrize("unit", ["hours", "days", "months"])
def test_start_in_the_future_is_the_first_fire(unit: Unit) -> None:
    start = utc("2030-06-15T10:20")
    every = Every(3, unit, BERLIN, start=start)
    assert every.next_after(utc("2027-01-01T00:00")) == start
    assert every.next_after(start - timedelta(microseconds=1)) == start
    later = every.next_after(start)
    assert later is not None
    assert later > start


def test_occurrences_never_depend_on_when_a_run_ended() -> None:
    every = Every(10, "minutes", UTC_ZONE, start=utc("2027-01-01T00:03"))
    assert every.next_after(utc("2027-01-01T05:17:59")) == utc("2027-01-01T05:23")


def test_at() -> None:
    at = At(datetime(2027, 6, 1, 12, 0, tzinfo=BERLIN))
    assert at.next_after(utc("2027-01-01T00:00")) == utc("2027-06-01T10:00")
    assert at.next_after(utc("2027-06-01T10:00")) is None
    assert at.next_after(utc("2028-01-01T00:00")) is None
    assert fire_times(at, utc("2027-01-01T00:00"), 5) == [utc("2027-06-01T10:00")]


def test_results_are_utc() -> None:
    for schedule in (
        Cron("0 9 * * *", BERLIN),
        Every(1, "days", BERLIN),
        At(utc("2030-01-01T00:00")),
    ):
        fire = schedule.next_after(datetime(2027, 1, 1, tzinfo=BERLIN))
        assert fire is not None
        assert fire.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    naive = wall("2027-01-01T00:00")
    with pytest.raises(ValueError, match="no time zone"):
        Cron("0 9 * * *", BERLIN).next_after(naive)
    with pytest.raises(ValueError, match="no time zone"):
        At(naive)
    with pytest.raises(ValueError, match="no time zone"):
        Every(1, "days", BERLIN, start=naive)


def test_invalid_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="invalid cron"):
        Cron("61 * * * *", BERLIN)
    with pytest.raises(ValueError, match="positive"):
        Every(0, "days", BERLIN)
    with pytest.raises(ValueError, match="unknown unit"):
        Every(1, "fortnights", BERLIN)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", (30, "seconds")),
        ("15m", (15, "minutes")),
        ("2h", (2, "hours")),
        ("1d", (1, "days")),
        ("1w", (1, "weeks")),
        ("1mo", (1, "months")),
        (" 90m ", (90, "minutes")),
        ({"minutes": 15}, (15, "minutes")),
        ({"months": 3}, (3, "months")),
    ],
)
def test_parse_every(value: str | dict[str, int], expected: tuple[int, str]) -> None:
    assert parse_every(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "every must be a positive number followed by s, m, h, d, w or mo, e.g. 15m"),
        ("15", "followed by s, m, h"),
        ("m", "followed by s, m, h"),
        ("0m", "positive number"),
        ("-5m", "positive number"),
        ("15min", "positive number"),
        ("1.5h", "positive number"),
        ("15M", "positive number"),
        ("15 m", "positive number"),
        ("1y", "positive number"),
        (15, "positive number"),
        ({"minutes": 0}, "positive whole number"),
        ({"minutes": "15"}, "positive whole number"),
        ({"minutes": True}, "positive whole number"),
        ({"minutes": 1, "hours": 1}, "exactly one of"),
        ({"fortnights": 1}, "exactly one of"),
        ({}, "exactly one of"),
        ("100000000w", "too long"),
    ],
)
def test_parse_every_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_every(value)


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-12-01T10:00:00+01:00", BERLIN, "2026-12-01T09:00"),
        ("2026-12-01T10:00:00+01:00", UTC_ZONE, "2026-12-01T09:00"),
        ("2026-12-01T10:00Z", BERLIN, "2026-12-01T10:00"),
        ("2026-11-30T09:00:00", BERLIN, "2026-11-30T08:00"),
        ("2026-11-30 09:00", BERLIN, "2026-11-30T08:00"),
        ("2026-11-30", BERLIN, "2026-11-29T23:00"),
        ("2026-07-01T09:00", BERLIN, "2026-07-01T07:00"),
        ("2027-10-31T02:30", BERLIN, "2027-10-31T00:30"),  # occurs twice: the first
        ("2027-03-28T02:30", UTC_ZONE, "2027-03-28T02:30"),
    ],
)
def test_parse_time(text: str, zone: ZoneInfo, expected: str) -> None:
    parsed = parse_time(text, zone)
    assert parsed == utc(expected)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an ISO 8601"),
        ("tomorrow", "not an ISO 8601"),
        ("2026-13-01", "not an ISO 8601"),
        ("2026-11-31", "not an ISO 8601"),
        ("2026-11-30T25:00", "not an ISO 8601"),
        ("30/11/2026", "not an ISO 8601"),
        (20261130, "ISO 8601"),
        (
            "2027-03-28T02:30",
            "'2027-03-28T02:30' does not exist in Europe/Berlin: "
            "the clock jumps from 02:00 to 03:00 that day",
        ),
    ],
)
def test_parse_time_rejects(text: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_time(text, BERLIN)


@pytest.mark.parametrize(
    "expression",
    [
        "0 9 * * *",
        "*/15 * * * *",
        "0 9 * * mon-fri",
        "0 9 1,15 * *",
        "30 1-3 * * *",
        "0 0 29 2 *",
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 1,LW * *",
        "0 3 * * 2#2",
        "0 9 * * fri#3",
        "0 18 * * 5L",
        "0 18 * * friL",
        "0 18 * * 7L",
        "0 9 * * 1#1,5L,3",
        "0 0 * 2 1#5",  # a 5th Monday in February: once in 28 years, but it does exist
        "0 0 ? * 1",
        "  0   9 * * *  ",
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    ],
)
def test_check_cron_accepts(expression: str) -> None:
    assert check_cron(expression) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 30 2 *", "'0 0 30 2 *' never fires"),
        ("0 0 31 4,6 *", "never fires"),
        ("0 0 0 1 1 *", "seconds and year fields are not supported"),
        ("0 0 1 1 * 2030", "seconds and year fields are not supported"),
        ("* * * *", "has 4 fields"),
        ("", "has 0 fields"),
        ("@reboot", "unsupported cron macro '@reboot'"),
        ("@every 5m", "unsupported cron macro"),
        ("61 * * * *", "invalid cron expression"),
        ("0 24 * * *", "invalid cron expression"),
        ("0 0 * 13 *", "invalid cron expression"),
        ("0 0 * * funday", "invalid cron expression"),
        ("0 0 * * 1#6", "the K of N#K must be 1 to 5"),
        ("0 0 * * 1#0", "the K of N#K must be 1 to 5"),
        ("0 0 * * 1#", "the K of N#K must be 1 to 5"),
        ("0 0 * * 8#1", "'8' is not one weekday (0-7 or sun-sat)"),
        ("0 0 * * 1-5L", "'1-5' is not one weekday"),
        ("0 0 * * L", "'' is not one weekday"),
        ("0 0 * * */2#1", "not one weekday"),
        ("0 0 15W * *", "W (nearest weekday) is not supported"),
        ("0 0 W * *", "W (nearest weekday) is not supported"),
        ("H 0 * * *", "H (hashed) values are not supported"),
    ],
)
def test_check_cron_rejects(expression: str, message: str) -> None:
    problem = check_cron(expression)
    assert problem is not None
    assert message in problem


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"cron": "0 9 * * *", "timezone": "Europe/Berlin"}, Cron("0 9 * * *", BERLIN)),
        ({"cron": "0 9 * * *"}, Cron("0 9 * * *", UTC_ZONE)),
        ({"every": "15m"}, Every(15, "minutes", UTC_ZONE)),
        (
            {"every": {"hours": 2}, "start": "2026-11-30T09:00", "timezone": "Europe/Berlin"},
            Every(2, "hours", BERLIN, start=utc("2026-11-30T08:00")),
        ),
        ({"every": "1d", "start": None}, Every(1, "days", UTC_ZONE)),
        ({"at": "2026-12-01T10:00:00+01:00"}, At(utc("2026-12-01T09:00"))),
        ({"at": "2026-12-01T10:00", "timezone": "Europe/Berlin"}, At(utc("2026-12-01T09:00"))),
        # What YAML makes of unquoted dates and times.
        ({"at": date(2026, 12, 1), "timezone": "Europe/Berlin"}, At(utc("2026-11-30T23:00"))),
        (
            {"at": wall("2026-12-01T10:00"), "timezone": "Europe/Berlin"},
            At(utc("2026-12-01T09:00")),
        ),
    ],
)
def test_from_spec(spec: dict[str, Any], expected: Schedule) -> None:
    assert from_spec(spec) == expected


def test_from_spec_default_zone() -> None:
    schedule = from_spec({"cron": "0 9 * * *"}, default_zone="America/New_York")
    assert schedule == Cron("0 9 * * *", ZoneInfo("America/New_York"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "exactly one of cron, every or at"),
        ({"cron": "0 9 * * *", "every": "1d"}, r"exactly one of cron, every or at \(got cron and"),
        ({"cron": "bad"}, "has 1 fields"),
        ({"cron": 5}, "cron must be a string"),
        ({"cron": "0 0 30 2 *"}, "never fires"),
        ({"every": "15x"}, "every must be a positive number"),
        ({"every": "1d", "start": "soon"}, "start: 'soon' is not an ISO 8601"),
        ({"every": "1d", "start": 12}, "start must be a date or time"),
        ({"at": "nope"}, "at: 'nope' is not an ISO 8601"),
        ({"at": "2027-03-28T02:30", "timezone": "Europe/Berlin"}, "does not exist"),
        ({"cron": "0 9 * * *", "start": "2026-01-01"}, "start is only allowed with every"),
        ({"cron": "0 9 * * *", "jitter": 5}, "unexpected schedule key jitter"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 9 * * *", "timezone": "Europe"}, "unknown time zone"),
        ({"cron": "0 9 * * *", "timezone": "../etc/passwd"}, "unknown time zone"),
        ({"cron": "0 9 * * *", "timezone": 1}, "unknown time zone"),
        ("0 9 * * *", "must be a mapping"),
    ],
)
def test_from_spec_rejects(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_spec(spec)


# --------------------------------------------------------------------------- dst_notes


def test_dst_notes_for_a_fixed_time_cron() -> None:
    assert dst_notes(Cron("30 2 * * *", BERLIN), utc("2027-01-01T00:00")) == [
        "02:30 does not exist in Europe/Berlin on 2027-03-28; runs at 03:00 (01:00Z) instead",
        "02:30 occurs twice in Europe/Berlin on 2027-10-31; runs once, at the first (00:30Z)",
    ]


def test_dst_notes_group_several_times_per_change() -> None:
    notes = dst_notes(Cron("*/20 2 * * *", BERLIN), utc("2027-01-01T00:00"))
    assert notes == [
        "02:00, 02:20 and 02:40 do not exist in Europe/Berlin on 2027-03-28; "
        "they run once, at 03:00 (01:00Z), instead",
        "02:00, 02:20 and 02:40 occur twice in Europe/Berlin on 2027-10-31; "
        "each runs once, at the first",
    ]


def test_dst_notes_for_every_days() -> None:
    every = Every(1, "days", BERLIN, start=parse_time("2027-01-10T02:30", BERLIN))
    notes = dst_notes(every, utc("2027-01-01T00:00"))
    assert [note.split(";")[0] for note in notes] == [
        "02:30 does not exist in Europe/Berlin on 2027-03-28",
        "02:30 occurs twice in Europe/Berlin on 2027-10-31",
    ]


@pytest.mark.parametrize(
    "schedule",
    [
        Cron("30 2 * * *", UTC_ZONE),
        Cron("30 * * * *", BERLIN),
        Cron("0 9 * * *", BERLIN),
        Every(2, "hours", BERLIN),
        Every(1, "days", BERLIN),
        At(utc("2027-03-28T01:00")),
    ],
)
def test_no_dst_notes(schedule: Schedule) -> None:
    assert dst_notes(schedule, utc("2027-01-01T00:00")) == []


def test_dst_notes_respect_the_horizon() -> None:
    cron = Cron("30 2 * * *", BERLIN)
    assert len(dst_notes(cron, utc("2027-01-01T00:00"), horizon_days=100)) == 1
    assert len(dst_notes(cron, utc("2027-01-01T00:00"), horizon_days=30)) == 0


# --------------------------------------------------------------------------- properties

# Each fires at least monthly, so the minute-by-minute reference stays bounded.
CRONS = [
    "* * * * *",
    "*/7 * * * *",
    "0 * * * *",
    "30 * * * *",
    "15 */2 * * *",
    "5,35 * * * 1-5",
    "*/20 * 1-10 * *",
    "0 2 * * *",
    "30 2 * * *",
    "30 1-3 * * *",
    "*/15 2 * * *",
    "0 0 * * *",
    "30 23 * * 6",
    "0 2 * * 0",
    "45 1 * * 0",
    "0 0 1 * *",
]
# Syntax variety for the wall-clock engine (checked against cronsim in UTC).
MORE_CRONS = [
    *CRONS,
    "0 9 * * mon-fri",
    "0 0 1,15 * 5",  # both day fields restricted: either matches
    "0 0 */2 * 1",  # day-of-month starts with a star: both must match (Vixie cron)
    "0 9 1-7 * 1",  # a range is a restriction: either matches
    "0 0 L * *",
    "0 12 L 2 *",
    "0 0 29 2 *",
    "0 0 31 * *",
    "59 23 31 12 *",
    "10-50/15 3,4 * jan,jul *",
    "0 0 * * 7",
]
NAIVE_MIN = datetime.combine(date(1999, 1, 1), time())
NAIVE_MAX = datetime.combine(date(2099, 1, 1), time())
FAST = settings(max_examples=300, deadline=None, database=None)


@FAST
@given(data=st.data(), zone_name=st.sampled_from(ZONES), expression=st.sampled_from(CRONS))
def test_cron_matches_minute_by_minute_reference(
    data: st.DataObject, zone_name: str, expression: str
) -> None:
    zone = ZoneInfo(zone_name)
    t = data.draw(instants(zone_name))
    fire = Cron(expression, zone).next_after(t.astimezone(zone))
    assert fire == reference_cron_next(expression, zone, t)
    assert fire is not None
    assert fire.tzinfo is UTC


@FAST
@given(
    expression=st.sampled_from(MORE_CRONS),
    t=st.datetimes(min_value=NAIVE_MIN, max_value=NAIVE_MAX),
)
def test_cron_wall_clock_matches_cronsim(expression: str, t: datetime) -> None:
    # In UTC there are no clock changes: the fire times are cronsim's own.
    expected = next(CronSim(expression, t)).replace(tzinfo=UTC)
    assert Cron(expression, UTC_ZONE).next_after(t.replace(tzinfo=UTC)) == expected


def reference_walls(origin: datetime, amount: int, unit: str) -> Iterator[datetime]:
    """The wall times of occurrences 1, 2, ...: a calendar stepped one period at a time."""
    current, year, month = origin, origin.year, origin.month
    while True:
        if unit == "months":
            for _ in range(amount):
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            day = min(origin.day, calendar.monthrange(year, month)[1])
            current = datetime.combine(date(year, month, day), origin.time())
        else:
            current += timedelta(days=amount * (7 if unit == "weeks" else 1))
        yield current


@FAST
@given(
    data=st.data(),
    zone_name=st.sampled_from(ZONES),
    unit=st.sampled_from(["days", "weeks", "months"]),
    amount=st.sampled_from([1, 1, 2, 5]),
    days_before=st.integers(-30, 400),
)
def test_every_calendar_matches_stepping_reference(
    data: st.DataObject, zone_name: str, unit: Unit, amount: int, days_before: int
) -> None:
    zone = ZoneInfo(zone_name)
    t, clock = data.draw(near_a_change(zone_name))
    start_day = t.astimezone(zone).date() - timedelta(days=days_before)
    start = reference_instant(datetime.combine(start_day, clock), zone)
    expected = [start] if start > t else []
    walls = reference_walls(start.astimezone(zone).replace(tzinfo=None), amount, unit)
    while len(expected) < 3:
        fire = reference_instant(next(walls), zone)
        if fire > t:
            expected.append(fire)
    assert fire_times(Every(amount, unit, zone, start=start), t.astimezone(zone), 3) == expected


# --- simple fields read without croniter ------------------------------------------------


def _simple_field(high: int) -> st.SearchStrategy[str]:
    """Fields of numbers, ranges, steps and lists around ``0..high`` (a few out of range)."""
    number = st.integers(0, high + 2).map(str)
    span = st.tuples(number, number).map("-".join)
    return st.one_of(
        st.just("*"),
        number,
        span,
        st.tuples(st.one_of(st.just("*"), span), st.integers(0, high + 4).map(str)).map("/".join),
        st.lists(number, min_size=2, max_size=3).map(",".join),
        st.lists(st.one_of(st.just("*"), span), min_size=2, max_size=3).map(",".join),
    )


@settings(max_examples=500, deadline=None)
@given(st.tuples(*(_simple_field(high) for _low, high in schedules._RANGES)))
def test_simple_cron_fields_are_read_as_croniter_reads_them(fields: tuple[str, ...]) -> None:
    # Simple fields are expanded without croniter (schedules._simple_values); whatever
    # that takes, croniter takes too and allows the same values.
    simple = [
        schedules._simple_values(field, low, high)
        for field, (low, high) in zip(fields, schedules._RANGES, strict=True)
    ]
    if None in simple:
        return
    expanded = schedules._croniter_values(" ".join(fields), list(fields))
    assert expanded == [(values, False) for values in simple]
