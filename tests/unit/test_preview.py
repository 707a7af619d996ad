"""runner.preview: what each clock change does to a schedule's fires, in words."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from runner import config as configs
from runner import preview
from runner.schedules import Cron, Every, Schedule, parse_time

BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


def changes(schedule: Schedule, after: str, n: int) -> list[str]:
    shown = preview.preview(schedule, utc(after), n)
    return [preview.change_in_words(change) for change in shown.changes]


SPRING = "clocks jump from 02:00 CET to 03:00 CEST at 01:00Z"
AUTUMN = "clocks go back from 03:00 CEST to 02:00 CET at 01:00Z"


@pytest.mark.parametrize(
    ("schedule", "after", "words"),
    [
        (
            Cron("*/20 2 * * *", BERLIN),
            "2027-03-27T12:00",
            f"2027-03-28 02:00, 02:20 and 02:40 Europe/Berlin do not exist ({SPRING}): "
            "they fire once, at 03:00 CEST (01:00Z)",
        ),
        (
            Cron("*/20 2 * * *", BERLIN),
            "2027-10-30T12:00",
            f"2027-10-31 02:00, 02:20 and 02:40 Europe/Berlin occur twice ({AUTUMN}): "
            "each fires once, the first time (from 02:00 CEST = 00:00Z)",
        ),
        (
            Cron("30 * * * *", BERLIN),
            "2027-03-27T23:00",
            f"2027-03-28 02:30 Europe/Berlin does not exist ({SPRING}): "
            "no fire then (an hour field of * fires at real times only)",
        ),
        (
            Cron("30 * * * *", BERLIN),
            "2027-10-30T23:00",
            f"2027-10-31 02:30 Europe/Berlin occurs twice ({AUTUMN}): "
            "fire in both passes (02:30 at 00:30Z and 01:30Z)",
        ),
        (
            Cron("0 9 * * *", BERLIN),
            "2027-03-27T12:00",
            f"2027-03-28 Europe/Berlin: {SPRING}; no fire moves",
        ),
        (
            Every(2, "hours", BERLIN),
            "2027-03-27T23:00",
            f"2027-03-28 Europe/Berlin: {SPRING}; fires keep their exact spacing",
        ),
        (
            Every(1, "weeks", BERLIN, start=parse_time("2027-03-21T02:30", BERLIN)),
            "2027-03-27T12:00",
            f"2027-03-28 02:30 Europe/Berlin does not exist ({SPRING}): "
            "fires at 03:00 CEST (01:00Z)",
        ),
        (
            # Half an hour back, on the 1st Sunday of April.
            Cron("45 1 * * 0#1", LORD_HOWE),
            "2027-03-27T00:00",
            "2027-04-04 01:45 Australia/Lord_Howe occurs twice (clocks go back from 02:00 +11 "
            "to 01:30 +1030 at 15:00Z): fires once, at 01:45 +11 (14:45Z)",
        ),
    ],
)
def test_each_change_in_words(schedule: Schedule, after: str, words: str) -> None:
    assert changes(schedule, after, 3 if isinstance(schedule, Cron) else 2)[:1] == [words]


def test_only_the_changes_up_to_the_last_fire() -> None:
    cron = Cron("0 2 * * *", BERLIN)
    assert changes(cron, "2027-03-20T12:00", 7) == []  # the 7th fire is 2027-03-27
    assert len(changes(cron, "2027-03-20T12:00", 8)) == 1
    assert changes(Cron("0 2 * * *", ZoneInfo("UTC")), "2027-01-01T00:00", 400) == []


def test_title() -> None:
    assert preview.title(Cron("0 18 * * 5L", BERLIN)) == (
        "cron '0 18 * * 5L' in Europe/Berlin: the last Friday of each month"
    )
    assert preview.title(Every(15, "minutes", BERLIN)) == "every 15 minutes in Europe/Berlin"


def test_partial_config_keeps_the_valid_events(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        textwrap.dedent(
            """\
            settings: {timezone: Europe/Berlin}
            events:
              - {name: good, command: x, schedule: {cron: "0 3 * * 2#2"}}
              - {name: schema, command: x, schedule: {cron: "0 3 * * *"}, timout: 5}
              - {name: cron, command: x, schedule: {cron: "0 3 * * 2#9"}}
            """
        )
    )
    (tmp_path / "b.yaml").write_text("events:\n  - {name: other, command: x, schedule: {}}\n")
    report = configs.validate([tmp_path], {}, utc("2026-12-01T00:00"))
    assert report.config is None
    assert report.partial is not None
    assert [e.name for e in report.partial.events] == ["good"]
    assert report.partial.events[0].schedule["timezone"] == "Europe/Berlin"
    assert {(Path(p.file).name, p.path) for p in report.errors} == {
        ("a.yaml", "events[1].timout"),
        ("a.yaml", "events[2].schedule.cron"),
        ("b.yaml", "events[0].schedule"),
    }
