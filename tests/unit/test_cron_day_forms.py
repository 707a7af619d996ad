"""The cron day forms users bring from cronsim, Quartz and supercronic crontabs: ``N#K``
and ``NL`` in day-of-week, ``L`` and ``LW`` in day-of-month. Examples first, then every fire
of 2027 in the property tests' zones compared with cronsim's wall times under the contract's
DST rules."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import config as configs
from runner.schedules import Cron, check_cron, cron_days_in_words, fire_times
from tests.unit.schedule_reference import (
    ZONES,
    instants,
    reference_cron_next,
    reference_instant,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


def local_days(expression: str, zone: ZoneInfo, after: str, n: int) -> list[str]:
    """The local dates and times of the next ``n`` fires, as ``Tue 2027-01-12 03:00``."""
    times = fire_times(Cron(expression, zone), utc(after), n)
    return [t.astimezone(zone).strftime("%a %Y-%m-%d %H:%M") for t in times]


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Patch Tuesday: the 2nd Tuesday.
        ("0 3 * * 2#2", ["Tue 2027-01-12 03:00", "Tue 2027-02-09 03:00", "Tue 2027-03-09 03:00"]),
        ("0 9 * * fri#3", ["Fri 2027-01-15 09:00", "Fri 2027-02-19 09:00", "Fri 2027-03-19 09:00"]),
        ("0 18 * * 5L", ["Fri 2027-01-29 18:00", "Fri 2027-02-26 18:00", "Fri 2027-03-26 18:00"]),
        # 7 is Sunday too; 2027-02-28 is the last Sunday of February.
        ("0 9 * * 7L", ["Sun 2027-01-31 09:00", "Sun 2027-02-28 09:00", "Sun 2027-03-28 09:00"]),
        # The last Monday-Friday: 2027-01-31 is a Sunday, 2027-02-28 a Sunday, 03-31 a Wednesday.
        ("0 9 LW * *", ["Fri 2027-01-29 09:00", "Fri 2027-02-26 09:00", "Wed 2027-03-31 09:00"]),
        ("0 9 L * *", ["Sun 2027-01-31 09:00", "Sun 2027-02-28 09:00", "Wed 2027-03-31 09:00"]),
        ("0 9 1,LW * *", ["Fri 2027-01-01 09:00", "Fri 2027-01-29 09:00", "Mon 2027-02-01 09:00"]),
        (
            "0 9 * * 1#1,5L",
            ["Mon 2027-01-04 09:00", "Fri 2027-01-29 09:00", "Mon 2027-02-01 09:00"],
        ),
    ],
)
def test_day_forms_in_2027(expression: str, expected: list[str]) -> None:
    assert local_days(expression, BERLIN, "2027-01-01T00:00", 3) == expected


def test_a_fifth_weekday_that_does_not_exist_is_no_fire() -> None:
    # 2027 has five Fridays in January, April, July, October and December only.
    assert local_days("0 9 * * 5#5", UTC_ZONE, "2027-01-01T00:00", 6) == [
        "Fri 2027-01-29 09:00",
        "Fri 2027-04-30 09:00",
        "Fri 2027-07-30 09:00",
        "Fri 2027-10-29 09:00",
        "Fri 2027-12-31 09:00",
        "Fri 2028-03-31 09:00",
    ]


def test_a_rare_day_is_found_decades_ahead() -> None:
    # A 5th Monday in February needs a leap year whose February starts on a Monday.
    cron = Cron("0 0 * 2 1#5", UTC_ZONE)
    assert cron.next_after(utc("2017-01-01T00:00")) == utc("2044-02-29T00:00")
    assert cron.next_after(utc("2072-03-01T00:00")) == utc("2112-02-29T00:00")  # 2100: no leap
    assert check_cron("0 0 * 2 1#5") is None
    assert check_cron("0 0 30 2 5L") is None  # either day field: the last Friday of February
    assert check_cron("0 0 * 2 1#5") is None


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Both day fields restricted: a day matching either fires (Vixie cron).
        ("0 0 13 * 5L", ["Wed 2027-01-13", "Fri 2027-01-29", "Sat 2027-02-13", "Fri 2027-02-26"]),
        # Day-of-month starts with a star: both must match.
        ("0 0 */2 * 5L", ["Fri 2027-01-29", "Fri 2027-06-25", "Fri 2027-08-27", "Fri 2027-10-29"]),
        ("0 0 * * 5L", ["Fri 2027-01-29", "Fri 2027-02-26", "Fri 2027-03-26", "Fri 2027-04-30"]),
        ("0 0 LW * 2#2", ["Tue 2027-01-12", "Fri 2027-01-29", "Tue 2027-02-09", "Fri 2027-02-26"]),
    ],
)
def test_day_fields_combine_as_vixie_cron(expression: str, expected: list[str]) -> None:
    days = [d[:14] for d in local_days(expression, UTC_ZONE, "2027-01-01T00:00", 4)]
    assert days == expected


def test_day_forms_follow_the_dst_rules() -> None:
    # 2027-03-28 and 2027-10-31 are the last Sundays of March and October: Berlin's changes.
    assert fire_times(Cron("0 2 * * 0L", BERLIN), utc("2027-03-01T00:00"), 1) == [
        utc("2027-03-28T01:00")  # 02:00 does not exist: fires when the clock jumps, 03:00 CEST
    ]
    assert fire_times(Cron("30 2 * * 0L", BERLIN), utc("2027-10-01T00:00"), 2) == [
        utc("2027-10-31T00:30"),  # 02:30 occurs twice: the first, CEST
        utc("2027-11-28T01:30"),
    ]
    # Wildcard hour: every real 30 minutes of the last Sunday, both passes of 02:xx.
    october = fire_times(Cron("*/30 * * * 0L", BERLIN), utc("2027-10-30T21:59"), 8)
    assert october == [utc("2027-10-30T22:00") + timedelta(minutes=30 * k) for k in range(8)]


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 3 * * 2#2", "the 2nd Tuesday of each month"),
        ("0 9 * * FRI#3", "the 3rd Friday of each month"),
        ("0 18 * * 5L", "the last Friday of each month"),
        ("0 9 LW * *", "the last weekday (Monday to Friday) of the month"),
        ("0 9 L * *", "the last day of the month"),
        ("0 9 1,15 * 5L", "day 1, 15 or the last Friday of each month"),
        ("0 9 * * 1#1,5L", "the 1st Monday of each month or the last Friday of each month"),
        ("0 0 * 2 1#5", "the 5th Monday of each month, in February"),
        ("0 9 * * 1", None),
        ("@daily", None),
    ],
)
def test_days_in_words(expression: str, words: str | None) -> None:
    assert cron_days_in_words(expression) == words


def test_config_accepts_the_day_forms(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            events:
              - {name: patch, command: "true", schedule: {cron: "0 3 * * 2#2"}}
              - {name: close, command: "true", schedule: {cron: "0 18 LW * *"}}
              - {name: review, command: "true", schedule: {cron: "0 9 * * fri#5"}}
              - {name: bad, command: "true", schedule: {cron: "0 9 * * 5#6"}}
            """
        )
    )
    report = configs.validate([path], {}, datetime(2026, 12, 1, tzinfo=UTC))
    assert [(p.line, p.path, p.message) for p in report.errors] == [
        (
            5,
            "events[3].schedule.cron",
            "invalid cron expression '0 9 * * 5#6': day-of-week '5#6': the K of N#K must be "
            "1 to 5 (N#K is the K-th weekday N of the month, e.g. 2#2 is the 2nd Tuesday)",
        )
    ]


# --------------------------------------------------------------------------- against cronsim

# cronsim's syntax for the new forms (it reads NL with a number only). Chosen to land on the
# zones' clock changes of 2027: Berlin changes on the last Sundays of March and October; New
# York on the 2nd Sunday of March and the 1st of November; Sydney, Lord Howe and Chatham on
# the 1st Sunday of April and the 1st (Chatham: last) Sunday of September/October; Santiago
# around midnight of the 1st Saturday of April and of September.
NEW_FORMS = [
    "0 2 * * 0L",
    "30 2 * * 7L",
    "*/20 2 * * 0L",
    "0 3 * * 2#2",
    "0 9 * * 5#3",
    "0 18 * * 5L",
    "0 9 * * 5#5",
    "0 9 LW * *",
    "0 0 L * *",
    "30 2 * * 0#2",
    "30 1 * * 0#1",
    "45 1 * * 0#1",
    "15 2 * * 0#1",
    "30 23 * * 6#1",
    "0 0 * * 0#1",
    "45 2 * * 0L,0#1",
    "*/30 * * * 0L",
    "15 * * * 0#1",
    "0 12 13 * 5L",
    "0 0 */2 * 5L",
    "0 0 LW 3,4,9,10 0#1",
]
YEAR_START, YEAR_END = utc("2027-01-01T00:00"), utc("2028-01-01T00:00")


def cronsim_fires_2027(expression: str, zone: ZoneInfo) -> list[datetime]:
    """Every 2027 fire, from cronsim's wall times mapped to instants by the contract.

    Fixed-time crons fire each wall time at its first occurrence, or when the clock jumps
    over it (walls skipped together fire once); wildcard-hour crons fire at every real
    instant whose wall time matches.
    """
    # Naive: cronsim lists wall times and applies no DST rule of its own.
    walls = CronSim(expression, datetime(2026, 12, 30))  # noqa: DTZ001
    wildcard_hour = expression.split()[1].startswith("*")
    fires: set[datetime] = set()
    for wall_time in walls:
        if wall_time > datetime(2028, 1, 2):  # noqa: DTZ001
            break
        if not wildcard_hour:
            fires.add(reference_instant(wall_time, zone))
            continue
        for fold in (0, 1):
            instant = wall_time.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) == wall_time:
                fires.add(instant)
    return sorted(t for t in fires if YEAR_START <= t < YEAR_END)


@pytest.mark.parametrize("expression", NEW_FORMS)
@pytest.mark.parametrize("zone_name", ZONES)
def test_new_forms_match_cronsim_through_2027(zone_name: str, expression: str) -> None:
    zone = ZoneInfo(zone_name)
    expected = cronsim_fires_2027(expression, zone)
    assert expected, "each form fires in 2027"
    cron, ours = Cron(expression, zone), []
    fire = cron.next_after(YEAR_START - timedelta(microseconds=1))
    while fire is not None and fire < YEAR_END:
        ours.append(fire)
        fire = cron.next_after(fire)
    assert ours == expected


@pytest.mark.parametrize("expression", NEW_FORMS)
def test_new_forms_match_cronsim_in_utc_for_decades(expression: str) -> None:
    # No clock changes in UTC: cronsim's own fire times, with the leap years of 2027-2060.
    expected = []
    for fire in CronSim(expression, datetime(2027, 1, 1, tzinfo=UTC)):
        if fire >= datetime(2060, 1, 1, tzinfo=UTC):
            break
        expected.append(fire)
    cron = Cron(expression, UTC_ZONE)
    assert fire_times(cron, utc("2027-01-01T00:00"), len(expected)) == expected
    after = cron.next_after(expected[-1])
    assert after is not None
    assert after >= datetime(2060, 1, 1, tzinfo=UTC)


# Monthly at least, so the minute-by-minute reference (45 days at most) stays bounded.
MONTHLY_FORMS = [e for e in NEW_FORMS if not e.endswith(("5#5", "*/2 * 5L", "3,4,9,10 0#1"))]


@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data(), zone_name=st.sampled_from(ZONES), expression=st.sampled_from(MONTHLY_FORMS))
def test_new_forms_match_minute_by_minute_reference(
    data: st.DataObject, zone_name: str, expression: str
) -> None:
    # From any instant (mostly near a clock change), not only the year's start.
    zone = ZoneInfo(zone_name)
    t = data.draw(instants(zone_name))
    assert Cron(expression, zone).next_after(t) == reference_cron_next(expression, zone, t)
