"""What a plan says about a change: each value old → new, and when a schedule fires."""

from __future__ import annotations

from datetime import UTC, datetime

from runner.plan import Change, FieldChange, Plan, Stored, changed_values, diff, with_fire_times
from runner.specs import CommandJob, Config, EventSpec, Settings

NOW = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)


def spec(name: str = "nightly", **fields: object) -> EventSpec:
    fields.setdefault("schedule", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    return EventSpec(name=name, job=CommandJob(("true",)), **fields)  # type: ignore[arg-type]


def stored(event: EventSpec) -> Stored:
    return Stored(event.name, "config", event.to_json(), event.spec_hash, event.schedule_hash)


def config(*events: EventSpec) -> Config:
    return Config(Settings(), tuple(events), revision="r")


def test_nested_values_are_compared_field_by_field_and_lists_whole() -> None:
    old = {"schedule": {"every": "1m", "timezone": "UTC"}, "command": ["a"], "timeout": 10}
    new = {"schedule": {"every": "5m", "timezone": "UTC"}, "command": ["a", "b"], "jitter": 3}
    assert list(changed_values(old, new)) == [
        FieldChange("command", ["a"], ["a", "b"]),
        FieldChange("jitter", None, 3),
        FieldChange("schedule.every", "1m", "5m"),
        FieldChange("timeout", 10, None),
    ]


def test_an_update_lists_old_and_new_and_a_new_schedule_its_fire_times() -> None:
    before = spec(schedule={"cron": "0 4 * * *", "timezone": "Europe/Berlin"}, timeout=10)
    after = spec(timeout=20)  # 02:30 in Berlin, across the spring change of 2027-03-28
    plan = with_fire_times(diff(config(after), {"nightly": stored(before)}, {}), config(after), NOW)
    (change,) = plan.changes
    assert (change.action, change.fields, change.reschedule) == (
        "update",
        ("schedule", "timeout"),
        True,
    )
    assert change.values == (
        FieldChange("schedule.cron", "0 4 * * *", "30 2 * * *"),
        FieldChange("timeout", 10, 20),
    )
    assert [f"{f:%m-%d %H:%M}" for f in change.fires] == [
        "03-28 01:00",
        "03-29 00:30",
        "03-30 00:30",
    ]


def test_fire_times_only_for_what_is_scheduled_anew() -> None:
    same_schedule = spec(timeout=5)
    created = spec("fresh", schedule={"at": "2027-04-01T10:00:00+02:00"})
    current = {"nightly": stored(spec())}
    desired = config(same_schedule, created)
    plan = with_fire_times(diff(desired, current, {}), desired, NOW)
    by_name = {c.name: c for c in plan.changes}
    assert by_name["nightly"].fires == ()  # only the timeout changed: no reschedule
    assert by_name["fresh"].fires == (datetime(2027, 4, 1, 8, 0, tzinfo=UTC),)  # one time only


def test_a_deleted_event_has_no_values_or_fire_times() -> None:
    plan = with_fire_times(
        diff(config(), {"nightly": stored(spec())}, {}, allow_empty=True), config(), NOW
    )
    assert plan.changes == (Change("delete", "event", "nightly"),)
    assert plan == Plan(plan.changes)
