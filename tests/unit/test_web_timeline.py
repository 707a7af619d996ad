"""The web view's pure parts: the timeline's geometry, fires and clock changes, and the
words it shows. Fixed instants, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runner import occurrences
from runner.results import Outcome
from runner.specs import CommandJob, EventSpec
from runner.store.sql import ExecutionRow
from runner.web import timeline, views, words

BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def spec(schedule: dict[str, Any], **fields: Any) -> EventSpec:
    job = fields.pop("job", CommandJob(("true",)))
    return EventSpec(name="e", schedule=schedule, job=job, **fields)


def execution(scheduled: datetime, outcome: Outcome, attempt: int = 1) -> ExecutionRow:
    return ExecutionRow(
        execution_id=1,
        event_id=1,
        event="e",
        scheduled_time=scheduled,
        attempt=attempt,
        trigger="schedule",
        outcome=outcome,
        start_time=None,
        end_time=None,
        duration=None,
        result=None,
        error=None,
        runner_id=None,
        config_revision=None,
        trace_session_id=None,
    )


def test_window_maps_the_day_before_and_after_now_onto_its_width() -> None:
    now = utc("2026-12-01T12:00:00")
    window = timeline.Window.around(now)
    assert window.x(now - timedelta(hours=24)) == 0
    assert window.x(now) == timeline.WIDTH / 2
    assert window.x(now + timedelta(hours=12)) == timeline.WIDTH * 3 / 4
    assert window.x(now + timedelta(days=9)) == timeline.WIDTH  # clamped
    assert window.x(now - timedelta(days=9)) == 0


def test_past_marks_keep_each_outcome_and_only_the_last_day() -> None:
    now = utc("2026-12-01T12:00:00")
    window = timeline.Window.around(now)
    rows = [
        execution(utc("2026-12-01T11:00:00"), "failed", attempt=2),
        execution(utc("2026-12-01T06:00:00"), "coalesced"),
        execution(utc("2026-11-30T11:59:00"), "succeeded"),  # more than a day ago
        execution(utc("2026-12-01T12:30:00"), "running"),  # a retry due later
    ]
    marks = timeline.past_marks(window, rows, BERLIN)
    assert [(m.kind, m.x) for m in marks] == [("failed", 460.0), ("coalesced", 360.0)]
    assert marks[0].label == (
        "failed: 2026-12-01 12:00:00 CET (2026-12-01 11:00:00 UTC), attempt 2"
    )


def test_clock_changes_of_the_shown_zones_are_marked() -> None:
    spring = timeline.Window.around(utc("2027-03-28T01:00:00"))
    (change,) = timeline.clock_changes(spring, ["Europe/Berlin", "UTC", "Europe/Berlin"])
    assert change.at == utc("2027-03-28T01:00:00")
    assert change.x == timeline.WIDTH / 2
    assert change.label == (
        "Europe/Berlin: clocks go forward on 2027-03-28, 02:00 → 03:00 (01:00 UTC)"
    )
    autumn = timeline.Window.around(utc("2027-11-07T00:00:00"))
    (back,) = timeline.clock_changes(autumn, ["America/New_York"])
    assert back.label == (
        "America/New_York: clocks go back on 2027-11-07, 02:00 → 01:00 (06:00 UTC)"
    )
    assert timeline.clock_changes(timeline.Window.around(utc("2026-12-01T00:00:00")), ["UTC"]) == []


def test_future_marks_follow_the_schedule_across_a_clock_change() -> None:
    daily = spec({"cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    window = timeline.Window.around(utc("2027-03-27T12:00:00"))
    (fire,) = timeline.future_marks(window, daily, BERLIN)
    # 02:30 does not exist that night: it fires when the clock jumps, at 01:00 UTC.
    assert fire.kind == "next"
    assert fire.label == "next: 2027-03-28 03:00:00 CEST (2027-03-28 01:00:00 UTC)"


def test_fires_are_the_runners_own_including_jitter_and_limit() -> None:
    jittered = spec({"every": "1h", "timezone": "UTC"}, jitter=600)
    start = utc("2026-12-01T00:00:00")
    fires = timeline.fires(jittered, start, None, 5)
    expected, t = [], start
    for _ in range(5):
        t = occurrences.next_fire(jittered, t)  # type: ignore[assignment]
        expected.append(t)
    assert fires == expected
    assert timeline.fires(jittered, start, start + timedelta(hours=2), 50) == expected[:2]
    once = spec({"at": "2026-12-01T10:00:00", "timezone": "UTC"})
    assert timeline.fires(once, utc("2026-12-01T11:00:00"), None, 10) == []


def test_axis_ticks_every_six_hours_of_utc() -> None:
    window = timeline.Window.around(utc("2026-12-01T13:20:00"))
    labels = [t.label for t in timeline.ticks(window)]
    assert labels == ["18:00", "00:00", "06:00", "12:00", "18:00", "00:00", "06:00", "12:00"]


@pytest.mark.parametrize(
    ("schedule", "said"),
    [
        ({"cron": "0 2 * * *", "timezone": "Europe/Berlin"}, "At 02:00 (Europe/Berlin)"),
        ({"cron": "*/15 * * * *", "timezone": "UTC"}, "Every 15 minutes (UTC)"),
        ({"cron": "@daily"}, "At 00:00 (UTC)"),
        ({"cron": "0 9 * * 1-5", "timezone": "UTC"}, "At 09:00, Monday through Friday (UTC)"),
        ({"every": "1d", "timezone": "America/New_York"}, "Every day (America/New_York)"),
        ({"every": {"minutes": 15}, "timezone": "UTC"}, "Every 15 minutes (UTC)"),
        (
            {"every": "1w", "start": "2026-11-30T09:00:00", "timezone": "UTC"},
            "Every week, from 2026-11-30T09:00:00 (UTC)",
        ),
        ({"at": "2026-12-01T10:00:00", "timezone": "UTC"}, "Once, at 2026-12-01T10:00:00 (UTC)"),
        ({"cron": "0 0 L * *", "timezone": "UTC"}, "At 00:00, on the last day of the month (UTC)"),
        ({"cron": "not a cron", "timezone": "UTC"}, "Cron not a cron (UTC)"),
    ],
)
def test_schedules_in_words(schedule: dict[str, Any], said: str) -> None:
    assert words.schedule(schedule) == said


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(None, ""), (0.4234, "0.42 s"), (185, "3 min 05 s"), (7800, "2 h 10 min")],
)
def test_durations_in_words(seconds: float | None, said: str) -> None:
    assert words.duration(seconds) == said


def test_sizes_and_counts_in_words() -> None:
    assert [words.size(n) for n in (512, 2000, 3 * 1024**2, 5 * 1024**3)] == [
        "512 B",
        "2.0 KiB",
        "3.0 MiB",
        "5.0 GiB",
    ]
    assert [words.count(n, "day") for n in (1, 1.5, 30)] == ["1 day", "1.5 days", "30 days"]


def test_the_shown_spec_leaves_out_a_commands_env_and_cwd() -> None:
    job = CommandJob(("pg_dump", "-f", "x.sql"), env={"PGPASSWORD": "secret"}, cwd="/srv")
    shown = views.shown_spec(spec({"cron": "0 2 * * *", "timezone": "UTC"}, job=job))
    assert shown["command"] == ["pg_dump", "-f", "x.sql"]
    assert "secret" not in repr(shown)
    assert "/srv" not in repr(shown)
    assert "PGPASSWORD" not in repr(shown)


def test_a_dense_schedule_shows_as_a_band_to_the_windows_end() -> None:
    every_second = spec({"every": "1s", "timezone": "UTC"})
    window = timeline.Window.around(utc("2026-12-01T12:00:00"))
    marks = timeline.future_marks(window, every_second, ZoneInfo("UTC"))
    assert [m.kind for m in marks].count("next") == timeline.MAX_FIRES
    band = marks[-1]
    assert band.kind == "band"
    assert band.x2 == timeline.WIDTH
    assert band.label == f"more than {timeline.MAX_FIRES} fires in the next 24 h"
