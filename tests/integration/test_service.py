"""The library API, :class:`SchedulerService`, on SQLite and PostgreSQL.

Every call returns a :class:`Result` (``success`` and ``data``, or an error ``code`` and
``message``) and never raises. Time is a :class:`FakeClock` that moves only when a test
moves it; a manual run or a due occurrence then happens when a :class:`Runner` ticks.
One test at the end uses the real clock, to show that ``start()`` executes on its own.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from runner import reconciler
from runner.errors import Conflict
from runner.loop import Runner
from runner.service import Result, SchedulerService
from runner.specs import CleanupSpec, Config, EventSpec, FunctionJob, RetryPolicy, Settings
from runner.store.engine import create_engine
from runner.store.sql import Store
from tests.fakes import FakeClock
from tests.integration import sample_jobs

T = TypeVar("T")
T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)  # a Monday
MODULE = "tests.integration.sample_jobs"
RECORD = f"{MODULE}:record"
GATE = f"{MODULE}:wait_for_gate"
FAIL = f"{MODULE}:fail"
HOUR = timedelta(hours=1)

OpenService = Callable[..., Awaitable[SchedulerService]]


# --- helpers ----------------------------------------------------------------------------


def ok(result: Result[T]) -> T:
    """The data of a successful result (which carries no error)."""
    assert isinstance(result, Result), result
    assert result.success, f"{result.code}: {result.message}"
    assert (result.code, result.message) == (None, None), result
    assert result.data is not None, result
    return result.data


def done(result: Result[Any]) -> None:
    """A successful result without data (start, shutdown)."""
    assert isinstance(result, Result), result
    assert result.success, f"{result.code}: {result.message}"
    assert result.code is None, result


def failed(result: Result[Any], code: str) -> str:
    """The message of a failed result with ``code``; a failure carries no data."""
    assert isinstance(result, Result), result
    assert not result.success, f"expected {code}, got success: {result.data!r}"
    assert result.code == code, f"expected {code}, got {result.code}: {result.message}"
    assert result.data is None, result
    assert result.message, result
    return result.message


def aware(value: str | None) -> datetime:
    """An ISO timestamp from a result, which must carry its offset."""
    assert value is not None
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} is naive"
    return parsed


def config_event(name: str, **fields: Any) -> EventSpec:
    fields.setdefault("schedule", {"every": "1h", "timezone": "UTC"})
    fields.setdefault("retry", RetryPolicy(attempts=0))
    function = fields.pop("function", RECORD)
    return EventSpec(name=name, job=FunctionJob(function), **fields)


async def apply_config(
    store: Store,
    clock: FakeClock,
    events: tuple[EventSpec, ...] = (),
    cleanups: tuple[CleanupSpec, ...] = (),
    revision: str = "rev-1",
    allow_empty: bool = False,
) -> None:
    config = Config(Settings(), events, cleanups, revision=revision)
    await reconciler.apply(store, config, clock.now(), allow_empty=allow_empty)


async def finish_runs(runner: Runner) -> None:
    """Wait until every run the runner started has ended and been recorded."""
    while runner.runs:
        await asyncio.gather(*(r.task for r in list(runner.runs.values())))


async def tick(runner: Runner) -> None:
    await runner.tick()
    await finish_runs(runner)


def exists(path: Path) -> bool:
    return path.exists()


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in events]


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def open_service(db_url: str, clock: FakeClock) -> AsyncIterator[OpenService]:
    """Open services on the test's database (with given settings); all shut down after."""
    sample_jobs.CALLS.clear()
    sample_jobs.GATES.clear()
    opened: list[SchedulerService] = []

    async def make(settings: Settings | None = None) -> SchedulerService:
        service = await SchedulerService.open(db_url, settings or Settings(), clock)
        opened.append(service)
        return service

    yield make
    for service in reversed(opened):
        for gate in sample_jobs.GATES.values():
            gate.set()
        await service.shutdown(grace=1)


@pytest.fixture
async def service(open_service: OpenService) -> SchedulerService:
    return await open_service()


@pytest.fixture
async def runner(service: SchedulerService, clock: FakeClock) -> AsyncIterator[Runner]:
    """A runner on the service's database, driven one tick at a time."""
    runner = Runner(service.store, Settings(), clock, runner_id="test:1")
    yield runner
    for gate in sample_jobs.GATES.values():
        gate.set()
    await runner.shutdown(1)


# --- schedule_event ---------------------------------------------------------------------


async def test_one_time_event_is_a_user_event_with_every_field(service: SchedulerService) -> None:
    data = ok(
        await service.schedule_event(
            "launch",
            RECORD,
            next_execution=T0 + HOUR,
            module_id="app.notify",
            parameters={"channel": "general", "count": 2},
            max_executions=1,
            description="Announce the launch",
        )
    )
    assert data["name"] == "launch"
    assert data["source"] == "user"
    assert data["status"] == "active"
    assert data["recurring"] is False
    assert data["function_name"] == RECORD
    assert data["command"] is None
    assert data["parameters"] == {"channel": "general", "count": 2}
    assert data["module_id"] == "app.notify"
    assert data["description"] == "Announce the launch"
    assert data["max_executions"] == 1
    assert data["config_revision"] is None
    assert (data["execution_count"], data["failure_count"]) == (0, 0)
    assert data["last_execution"] is None
    assert aware(data["next_execution"]) == T0 + HOUR
    assert ok(await service.get_event("launch")) == data


async def test_a_time_without_offset_is_read_in_the_events_zone(service: SchedulerService) -> None:
    data = ok(
        await service.schedule_event(
            "local", RECORD, next_execution="2027-01-04T12:00:00", timezone="Europe/Berlin"
        )
    )
    assert aware(data["next_execution"]) == datetime(2027, 1, 4, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("interval_type", "value", "first"),
    [
        ("seconds", 30, T0 + timedelta(seconds=30)),
        ("minutes", 15, T0 + timedelta(minutes=15)),
        ("hours", 2, T0 + timedelta(hours=2)),
        ("days", 1, None),
        ("weeks", 1, None),
        ("months", 1, None),
    ],
)
async def test_interval_events_repeat_by_their_unit(
    service: SchedulerService, interval_type: str, value: int, first: datetime | None
) -> None:
    data = ok(
        await service.schedule_event(
            f"every-{interval_type}",
            RECORD,
            recurring=True,
            interval_type=interval_type,
            interval_value=value,
        )
    )
    assert data["recurring"] is True
    assert data["schedule"]["every"] == {interval_type: value}
    upcoming = aware(data["next_execution"])
    assert upcoming > T0
    if first is not None:
        assert upcoming == first


async def test_an_interval_starts_at_next_execution_when_given(service: SchedulerService) -> None:
    start = T0 + timedelta(minutes=30)
    data = ok(
        await service.schedule_event(
            "from-start",
            RECORD,
            next_execution=start,
            recurring=True,
            interval_type="minutes",
            interval_value=10,
        )
    )
    assert aware(data["next_execution"]) == start
    assert aware(data["schedule"]["start"]) == start


async def test_cron_events_follow_their_expression_and_zone(service: SchedulerService) -> None:
    data = ok(
        await service.schedule_event(
            "five",
            RECORD,
            recurring=True,
            interval_type="cron",
            interval_value="*/5 * * * *",
            module_id="m",
            parameters={"x": 1},
            max_executions=3,
            description="every five minutes",
        )
    )
    assert data["schedule"]["cron"] == "*/5 * * * *"
    assert aware(data["next_execution"]) == T0 + timedelta(minutes=5)
    assert (data["module_id"], data["parameters"], data["max_executions"]) == ("m", {"x": 1}, 3)
    noon = ok(
        await service.schedule_event(
            "berlin-noon",
            RECORD,
            recurring=True,
            interval_type="cron",
            interval_value="0 12 * * *",
            timezone="Europe/Berlin",
        )
    )
    assert aware(noon["next_execution"]) == datetime(2027, 1, 4, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "field_named"),
    [
        pytest.param({"name": "Bad Name"}, "name", id="name"),
        pytest.param({"name": "x" * 101}, "name", id="long-name"),
        pytest.param({"function_name": "not a function"}, "function", id="function"),
        pytest.param({"function_name": "module_without_callable"}, "function", id="no-colon"),
        pytest.param(
            {"recurring": True, "interval_type": "cron", "interval_value": "61 * * * *"},
            "cron",
            id="cron-range",
        ),
        pytest.param(
            {"recurring": True, "interval_type": "cron", "interval_value": "* * *"},
            "cron",
            id="cron-fields",
        ),
        pytest.param({"timezone": "Mars/Olympus_Mons"}, "timezone", id="zone"),
        pytest.param(
            {"recurring": True, "interval_type": "minutes", "interval_value": "5"},
            "interval_value",
            id="string-interval",
        ),
        pytest.param(
            {"recurring": True, "interval_type": "minutes", "interval_value": 1.5},
            "interval_value",
            id="float-interval",
        ),
        pytest.param(
            {"recurring": True, "interval_type": "fortnights", "interval_value": 1},
            "interval_type",
            id="unit",
        ),
        pytest.param(
            {"recurring": True, "interval_type": "hours", "interval_value": 0},
            "every",
            id="zero-interval",
        ),
        pytest.param({"next_execution": None}, "next_execution", id="one-time-without-time"),
        pytest.param({"next_execution": "next tuesday"}, "at", id="unparsable-time"),
        pytest.param({"max_executions": -1}, "max_executions", id="negative-max"),
        pytest.param({"max_executions": 0}, "max_executions", id="zero-max"),
        pytest.param({"max_executions": 10**20}, "max_executions", id="huge-max"),
        pytest.param({"overlap": "sometimes"}, "overlap", id="option"),
        pytest.param({"bogus": 1}, "bogus", id="unknown-option"),
        pytest.param({"parameters": {"x": math.nan}}, "parameters", id="nan-parameter"),
        pytest.param({"parameters": {"x": [math.inf]}}, "parameters", id="inf-parameter"),
        pytest.param({"parameters": {"x": "y" * 70_000}}, "parameters", id="huge-parameters"),
    ],
)
async def test_invalid_input_is_a_validation_error_naming_the_field(
    service: SchedulerService, fields: dict[str, Any], field_named: str
) -> None:
    arguments: dict[str, Any] = {
        "name": "job",
        "function_name": RECORD,
        "next_execution": T0 + HOUR,
        **fields,
    }
    message = failed(await service.schedule_event(**arguments), "validation_error")
    assert field_named in message
    assert ok(await service.list_events()) == []


async def test_a_one_time_event_in_the_past_is_refused_unless_allowed(
    service: SchedulerService, open_service: OpenService, runner: Runner, clock: FakeClock
) -> None:
    message = failed(
        await service.schedule_event("late", RECORD, next_execution=T0 - timedelta(minutes=1)),
        "validation_error",
    )
    assert "past" in message
    assert "next_execution" in message
    failed(await service.schedule_event("now", RECORD, next_execution=T0), "validation_error")
    assert ok(await service.list_events()) == []

    lenient = await open_service(Settings(allow_past_events=True))
    data = ok(
        await lenient.schedule_event("late", RECORD, next_execution=T0 - timedelta(minutes=1))
    )
    assert aware(data["next_execution"]) == T0 - timedelta(minutes=1)
    await tick(runner)  # a minute late is within the misfire grace: it runs
    assert [c[0] for c in sample_jobs.CALLS] == ["late"]


async def test_a_taken_name_is_a_conflict(
    service: SchedulerService, clock: FakeClock, runner: Runner
) -> None:
    ok(await service.schedule_event("mine", RECORD, next_execution=T0 + HOUR))
    message = failed(
        await service.schedule_event("mine", RECORD, next_execution=T0 + 2 * HOUR), "conflict"
    )
    assert "mine" in message
    await apply_config(service.store, clock, (config_event("declared"),))
    failed(await service.schedule_event("declared", RECORD, next_execution=T0 + HOUR), "conflict")
    # Neither the user event nor the config event was changed by the refused calls.
    assert aware(ok(await service.get_event("mine"))["next_execution"]) == T0 + HOUR
    assert ok(await service.get_event("declared"))["source"] == "config"


# --- listing ----------------------------------------------------------------------------


@pytest.fixture
async def mixed(service: SchedulerService, clock: FakeClock) -> SchedulerService:
    """Config events (one disabled) and user events (one paused), of two modules."""
    await apply_config(
        service.store,
        clock,
        (
            config_event("cfg-on", module_id="core"),
            config_event("cfg-off", module_id="core", enabled=False),
        ),
    )
    ok(
        await service.schedule_event(
            "u-once", RECORD, next_execution=T0 + HOUR, module_id="reports"
        )
    )
    ok(
        await service.schedule_event(
            "u-every",
            GATE,
            recurring=True,
            interval_type="minutes",
            interval_value=5,
            module_id="reports",
        )
    )
    ok(
        await service.schedule_event(
            "u-paused",
            RECORD,
            recurring=True,
            interval_type="cron",
            interval_value="0 * * * *",
            module_id="core",
        )
    )
    ok(await service.pause_event("u-paused"))
    return service


ALL = ["cfg-off", "cfg-on", "u-every", "u-once", "u-paused"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ALL),
        ({"status": "paused"}, ["cfg-off", "u-paused"]),
        ({"status": "active"}, ["cfg-on", "u-every", "u-once"]),
        ({"status": "completed"}, []),
        ({"module_id": "reports"}, ["u-every", "u-once"]),
        ({"module_id": "core"}, ["cfg-off", "cfg-on", "u-paused"]),
        ({"module_id": "nobody"}, []),
        ({"function_name": GATE}, ["u-every"]),
        ({"recurring": True}, ["cfg-off", "cfg-on", "u-every", "u-paused"]),
        ({"recurring": False}, ["u-once"]),
        ({"status": "paused", "module_id": "core"}, ["cfg-off", "u-paused"]),
        ({"status": "active", "recurring": True, "module_id": "core"}, ["cfg-on"]),
    ],
)
async def test_list_events_filters_and_counts(
    mixed: SchedulerService, filters: dict[str, Any], expected: list[str]
) -> None:
    result = await mixed.list_events(**filters)
    assert names(ok(result)) == expected
    assert result.meta == {"total_count": len(ALL), "filtered_count": len(expected)}


async def test_list_events_limit_cuts_the_page_not_the_counts(mixed: SchedulerService) -> None:
    result = await mixed.list_events(limit=2)
    assert names(ok(result)) == ALL[:2]
    assert result.meta == {"total_count": 5, "filtered_count": 5}
    recurring = await mixed.list_events(recurring=True, limit=1)
    assert names(ok(recurring)) == ["cfg-off"]
    assert recurring.meta == {"total_count": 5, "filtered_count": 4}


async def test_listed_events_show_status_and_source(mixed: SchedulerService) -> None:
    listed = {e["name"]: e for e in ok(await mixed.list_events())}
    assert {n: e["source"] for n, e in listed.items()} == {
        "cfg-off": "config",
        "cfg-on": "config",
        "u-every": "user",
        "u-once": "user",
        "u-paused": "user",
    }
    assert listed["u-paused"]["status"] == "paused"
    assert listed["cfg-off"]["status"] == "paused"
    assert listed["u-every"] == ok(await mixed.get_event("u-every"))


async def test_an_empty_database_lists_nothing(service: SchedulerService) -> None:
    result = await service.list_events()
    assert ok(result) == []
    assert result.meta == {"total_count": 0, "filtered_count": 0}


# --- get / cancel -----------------------------------------------------------------------


async def test_unknown_events_are_not_found_by_every_call(service: SchedulerService) -> None:
    calls: list[Awaitable[Result[Any]]] = [
        service.get_event("ghost"),
        service.cancel_event("ghost"),
        service.pause_event("ghost"),
        service.resume_event("ghost"),
        service.execute_now("ghost"),
        service.get_executions("ghost"),
    ]
    for call in calls:
        assert "ghost" in failed(await call, "not_found")


async def test_cancelling_a_user_event_stops_its_runs(
    service: SchedulerService, clock: FakeClock, runner: Runner
) -> None:
    ok(
        await service.schedule_event(
            "hourly", RECORD, recurring=True, interval_type="hours", interval_value=1
        )
    )
    cancelled = ok(await service.cancel_event("hourly"))
    assert cancelled["status"] == "cancelled"
    assert cancelled["next_execution"] is None
    assert ok(await service.get_event("hourly"))["status"] == "cancelled"
    assert names(ok(await service.list_events(status="cancelled"))) == ["hourly"]
    clock.advance(3 * 3600)
    await tick(runner)
    assert sample_jobs.CALLS == []
    assert ok(await service.get_executions("hourly")) == []


async def test_a_config_event_cannot_be_cancelled(
    service: SchedulerService, clock: FakeClock
) -> None:
    await apply_config(service.store, clock, (config_event("declared"),))
    before = ok(await service.get_event("declared"))
    message = failed(await service.cancel_event("declared"), "conflict")
    assert "config" in message
    assert ok(await service.get_event("declared")) == before


# --- pause / resume / execute_now / executions ------------------------------------------


async def test_a_paused_event_does_not_run_and_resumes_without_making_up(
    service: SchedulerService, clock: FakeClock, runner: Runner
) -> None:
    ok(
        await service.schedule_event(
            "hourly", RECORD, recurring=True, interval_type="hours", interval_value=1
        )
    )
    paused = ok(await service.pause_event("hourly"))
    assert paused["status"] == "paused"
    clock.set(T0 + 3 * HOUR + timedelta(minutes=1))
    await tick(runner)
    assert sample_jobs.CALLS == []
    resumed = ok(await service.resume_event("hourly"))
    assert resumed["status"] == "active"
    assert aware(resumed["next_execution"]) == T0 + 4 * HOUR  # the pause is not made up
    await tick(runner)
    assert sample_jobs.CALLS == []
    clock.set(T0 + 4 * HOUR)
    await tick(runner)
    assert [c[0] for c in sample_jobs.CALLS] == ["hourly"]


async def test_execute_now_runs_once_when_the_runner_ticks(
    service: SchedulerService, clock: FakeClock, runner: Runner
) -> None:
    ok(
        await service.schedule_event(
            "daily",
            RECORD,
            recurring=True,
            interval_type="days",
            interval_value=1,
            parameters={"who": "ops"},
        )
    )
    upcoming = ok(await service.get_event("daily"))["next_execution"]
    clock.advance(7)
    data = ok(await service.execute_now("daily"))
    assert data["next_execution"] == upcoming
    assert sample_jobs.CALLS == []  # the service asks; the runner runs
    await tick(runner)
    await tick(runner)  # and only once
    assert sample_jobs.CALLS == [("daily", 1, {"who": "ops"})]
    (run,) = ok(await service.get_executions("daily"))
    assert run["trigger"] == "manual"
    assert run["outcome"] == "succeeded"
    assert run["result"] == {"ok": True, "who": "ops"}
    assert aware(run["scheduled_time"]) == T0 + timedelta(seconds=7)
    event = ok(await service.get_event("daily"))
    assert event["next_execution"] == upcoming  # the schedule is not moved by a manual run
    assert aware(event["last_execution"]) == T0 + timedelta(seconds=7)


async def test_get_executions_newest_first_with_a_limit(
    service: SchedulerService, clock: FakeClock, runner: Runner
) -> None:
    ok(
        await service.schedule_event(
            "often", RECORD, recurring=True, interval_type="minutes", interval_value=1
        )
    )
    ok(await service.schedule_event("breaks", FAIL, next_execution=T0 + timedelta(seconds=30)))
    for minute in range(1, 4):
        clock.set(T0 + timedelta(minutes=minute))
        await tick(runner)
    runs = ok(await service.get_executions("often"))
    assert [aware(r["scheduled_time"]) for r in runs] == [
        T0 + timedelta(minutes=m) for m in (3, 2, 1)
    ]
    assert {r["outcome"] for r in runs} == {"succeeded"}
    assert all(r["event"] == "often" for r in runs)
    assert len(ok(await service.get_executions("often", limit=2))) == 2
    (broken,) = ok(await service.get_executions("breaks"))
    assert broken["outcome"] == "failed"
    assert "boom" in broken["error"]
    everything = ok(await service.get_executions())
    assert {r["event"] for r in everything} == {"often", "breaks"}
    assert len(everything) == 4


# --- cleanup ----------------------------------------------------------------------------


def make_tree(root: Path) -> tuple[list[Path], list[Path]]:
    """Old and fresh log files under ``root`` (mtimes relative to the fake clock)."""
    root.mkdir(parents=True, exist_ok=True)
    old = [root / f"old-{i}.log" for i in range(3)]
    fresh = [root / "fresh.log", root / "keep.txt"]
    for path in [*old, *fresh]:
        path.write_text("x" * 100)
    for path in old:
        stamp = (T0 - timedelta(days=10)).timestamp()
        os.utime(path, (stamp, stamp))
    for path in fresh:
        stamp = (T0 - HOUR).timestamp()
        os.utime(path, (stamp, stamp))
    return old, fresh


async def test_register_cleanup_creates_and_replaces_a_user_policy(
    service: SchedulerService, tmp_path: Path
) -> None:
    data = ok(
        await service.register_cleanup(
            "app-logs", str(tmp_path / "logs"), pattern="*.log", retention_days=7, priority=5
        )
    )
    assert data["name"] == "app-logs"
    assert data["directory"] == str(tmp_path / "logs")
    assert (data["pattern"], data["retention_days"], data["priority"]) == ("*.log", 7, 5)
    ok(await service.register_cleanup("app-logs", str(tmp_path / "logs"), max_files=3))
    (policy,) = ok(await service.list_cleanups())
    assert (policy["name"], policy["max_files"], policy["retention_days"]) == ("app-logs", 3, None)


@pytest.mark.parametrize(
    ("directory", "fields", "field_named"),
    [
        ("/", {}, "directory"),
        ("/etc", {"retention_days": 1}, "directory"),
        ("{tmp}", {"max_files": -1}, "max_files"),
        ("{tmp}", {"retention_days": "soon"}, "retention_days"),
        ("{tmp}", {"colour": "blue"}, "colour"),
        ("{tmp}", {"exclude": None}, "exclude"),  # a null is judged, not dropped
    ],
)
async def test_register_cleanup_refuses_invalid_policies(
    service: SchedulerService,
    tmp_path: Path,
    directory: str,
    fields: dict[str, Any],
    field_named: str,
) -> None:
    target = directory.format(tmp=tmp_path)
    message = failed(await service.register_cleanup("bad", target, **fields), "validation_error")
    assert field_named in message
    assert ok(await service.list_cleanups()) == []


async def test_register_cleanup_judges_a_mapping_as_given(
    service: SchedulerService, tmp_path: Path
) -> None:
    # The HTTP API passes the body as sent: every key reaches the schema.
    for policy in (
        {"directory": str(tmp_path), "": 1},
        {"directory": str(tmp_path), "max_files": None},
    ):
        failed(await service.register_cleanup(policy), "validation_error")
    assert ok(await service.list_cleanups()) == []


async def test_register_cleanup_refuses_a_priority_the_database_cannot_hold(
    service: SchedulerService, tmp_path: Path
) -> None:
    result = await service.register_cleanup(
        "big", str(tmp_path / "logs"), priority=10**20, retention_days=1
    )
    assert "priority" in failed(result, "validation_error")


async def test_a_huge_retention_keeps_everything_and_never_breaks_a_cleanup(
    service: SchedulerService, tmp_path: Path
) -> None:
    old, fresh = make_tree(tmp_path / "logs")
    registered = await service.register_cleanup(
        "forever", str(tmp_path / "logs"), retention_days=1e12
    )
    if not registered.success:  # refusing it is as good as honouring it
        assert "retention_days" in failed(registered, "validation_error")
        return
    (report,) = ok(await service.run_cleanup())
    assert (report["deleted"], report["errors"]) == (0, [])
    assert all(p.exists() for p in [*old, *fresh])


async def test_register_cleanup_refuses_a_config_policys_name(
    service: SchedulerService, clock: FakeClock, tmp_path: Path
) -> None:
    declared = CleanupSpec(name="declared", directory=str(tmp_path / "a"), retention_days=1)
    await apply_config(service.store, clock, cleanups=(declared,))
    message = failed(
        await service.register_cleanup("declared", str(tmp_path / "b"), retention_days=2),
        "conflict",
    )
    assert "declared" in message
    (policy,) = ok(await service.list_cleanups())
    assert policy["directory"] == str(tmp_path / "a")


async def test_run_cleanup_dry_run_reports_and_deletes_nothing_then_a_real_run_deletes(
    service: SchedulerService, tmp_path: Path
) -> None:
    old, fresh = make_tree(tmp_path / "logs")
    ok(
        await service.register_cleanup(
            "app-logs", str(tmp_path / "logs"), pattern="*.log", retention_days=1
        )
    )
    (report,) = ok(await service.run_cleanup(dry_run=True))
    assert report["policy"] == "app-logs"
    assert report["dry_run"] is True
    assert report["scanned"] == 5
    assert report["matched"] == 4
    assert report["deleted"] == 3
    assert report["errors"] == []
    assert sorted(w.split(" ")[0] for w in report["would_delete"]) == sorted(p.name for p in old)
    assert aware(report["started_at"]) == T0
    assert all(p.exists() for p in [*old, *fresh])

    (real,) = ok(await service.run_cleanup(policies=["app-logs"]))
    assert (real["dry_run"], real["deleted"], real["bytes_freed"]) == (False, 3, 300)
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in fresh)
    stored = await service.store.cleanup_reports()
    assert [(r["policy"], r["dry_run"], r["deleted"]) for r in stored] == [
        ("app-logs", False, 3),
        ("app-logs", True, 3),
    ]


async def test_run_cleanup_reports_a_missing_directory_and_refuses_unknown_policies(
    service: SchedulerService, tmp_path: Path
) -> None:
    ok(await service.register_cleanup("gone", str(tmp_path / "missing"), retention_days=1))
    (report,) = ok(await service.run_cleanup())
    assert report["deleted"] == 0
    assert report["errors"]
    assert "nope" in failed(await service.run_cleanup(policies=["gone", "nope"]), "not_found")


async def test_a_cleanup_policy_never_deletes_the_services_own_database(
    sqlite_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    """The SQLite file (and its -wal/-shm) sits in tmp_path; a policy on tmp_path that
    would delete everything must be refused or must leave the database alone."""
    service = await SchedulerService.open(sqlite_url, Settings(), clock)
    try:
        ok(await service.schedule_event("keep-me", RECORD, next_execution=T0 + HOUR))
        database = Path(sqlite_url.removeprefix("sqlite:///"))
        assert exists(database)
        registered = await service.register_cleanup("everything", str(tmp_path), max_files=1)
        if registered.success:
            await service.run_cleanup()
        else:
            assert registered.code == "validation_error"
        assert exists(database), "run_cleanup deleted the service's own database"
    finally:
        await service.shutdown(grace=0)
    reopened = await SchedulerService.open(sqlite_url, Settings(), clock)
    try:
        assert names(ok(await reopened.list_events())) == ["keep-me"]
    finally:
        await reopened.shutdown(grace=0)


# --- reconcile and user events ----------------------------------------------------------


async def test_reconcile_never_touches_user_events(
    service: SchedulerService, clock: FakeClock, tmp_path: Path
) -> None:
    ok(
        await service.schedule_event(
            "u-hourly",
            RECORD,
            recurring=True,
            interval_type="hours",
            interval_value=1,
            module_id="user",
        )
    )
    ok(await service.schedule_event("u-once", RECORD, next_execution=T0 + HOUR))
    ok(await service.pause_event("u-once"))
    ok(await service.register_cleanup("u-logs", str(tmp_path / "u"), retention_days=3))
    before = {e["name"]: e for e in ok(await service.list_events())}
    policies_before = ok(await service.list_cleanups())

    declared = CleanupSpec(name="c-logs", directory=str(tmp_path / "c"), retention_days=1)
    await apply_config(service.store, clock, (config_event("cfg"),), (declared,))
    clock.advance(60)
    await apply_config(
        service.store,
        clock,
        (config_event("cfg", schedule={"every": "2h", "timezone": "UTC"}),),
        revision="rev-2",
    )
    listed = {e["name"]: e for e in ok(await service.list_events())}
    assert {n: e for n, e in listed.items() if n != "cfg"} == before

    # Taking a user event's name is refused as a whole: nothing of that config applies.
    with pytest.raises(Conflict):
        await apply_config(
            service.store, clock, (config_event("u-once"), config_event("new")), revision="rev-3"
        )
    assert ok(await service.get_event("u-once")) == before["u-once"]
    failed(await service.get_event("new"), "not_found")

    # An empty config, even with allow_empty, removes only what the config declared
    # (retired with its history, no longer listed).
    await apply_config(service.store, clock, revision="rev-empty", allow_empty=True)
    assert ok(await service.get_event("cfg"))["status"] == "removed"
    result = await service.list_events()
    assert {e["name"]: e for e in ok(result)} == before
    assert result.meta == {"total_count": 2, "filtered_count": 2}
    assert ok(await service.list_cleanups()) == policies_before


# --- running in the service's own process -----------------------------------------------


async def test_start_runs_due_events_and_shutdown_interrupts_and_closes(
    db_url: str, service: SchedulerService, clock: FakeClock
) -> None:
    done(await service.start())
    done(await service.start())  # a second start is harmless
    ok(await service.schedule_event("quick", RECORD, next_execution=T0 + timedelta(seconds=5)))
    ok(await service.schedule_event("long", GATE, next_execution=T0 + timedelta(seconds=5)))
    clock.set(T0 + timedelta(seconds=5))
    service.wake()
    deadline = time.monotonic() + 30  # a safety bound only: the fake clock drives the loop
    while True:
        quick = ok(await service.get_executions("quick"))
        started = {c[0] for c in sample_jobs.CALLS}
        if started == {"quick", "long"} and quick and quick[0]["outcome"] == "succeeded":
            break
        assert time.monotonic() < deadline, (sample_jobs.CALLS, quick)
        await asyncio.sleep(0.01)

    done(await service.shutdown(grace=0))
    assert service.runner is not None
    assert service._task is not None
    assert service._task.done()

    store = await Store.open(db_url)
    try:
        outcomes = {r.event: r.outcome for r in await store.history()}
    finally:
        await store.close()
    assert outcomes.get("long") == "interrupted"
    assert outcomes.get("quick") == "succeeded"


async def test_shutdown_keeps_the_result_of_a_run_that_has_already_ended(
    db_url: str, service: SchedulerService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that has returned, but whose result is still being written when shutdown
    comes, is recorded as it ended: stopping the runner must not cancel the write."""
    writing = asyncio.Event()
    real_finish = service.store.finish

    async def slow_finish(*args: Any, **kwargs: Any) -> Any:
        writing.set()
        await asyncio.sleep(0.3)  # a slow database
        return await real_finish(*args, **kwargs)

    monkeypatch.setattr(service.store, "finish", slow_finish)
    done(await service.start())
    ok(await service.schedule_event("ends", RECORD, next_execution=T0 + timedelta(seconds=5)))
    clock.set(T0 + timedelta(seconds=5))
    service.wake()
    await asyncio.wait_for(writing.wait(), timeout=30)
    done(await service.shutdown(grace=0))
    store = await Store.open(db_url)
    try:
        (run,) = await store.history("ends")
    finally:
        await store.close()
    assert (run.outcome, run.result) == ("succeeded", {"ok": True})


async def test_every_call_returns_a_result_when_the_database_is_unreachable() -> None:
    """Nothing listens on port 1: each call fails as a database error, none raises."""
    service = SchedulerService(
        Store(create_engine("postgresql://nobody@127.0.0.1:1/none")), Settings(), FakeClock(T0)
    )
    calls: list[Awaitable[Result[Any]]] = [
        service.schedule_event("x", RECORD, next_execution=T0 + HOUR),
        service.list_events(),
        service.get_event("x"),
        service.cancel_event("x"),
        service.pause_event("x"),
        service.resume_event("x"),
        service.execute_now("x"),
        service.get_executions("x"),
        service.register_cleanup("c", "/srv/app/logs", retention_days=1),
        service.list_cleanups(),
        service.run_cleanup(),
    ]
    codes = []
    for call in calls:
        result = await call
        assert isinstance(result, Result)
        assert not result.success
        codes.append(result.code)
    done(await service.shutdown())
    assert codes == ["database_error"] * len(calls)


async def test_start_executes_an_event_with_the_real_clock(db_url: str) -> None:
    """No fake clock: an event created through the service runs on time, on its own."""
    sample_jobs.CALLS.clear()
    service = await SchedulerService.open(db_url, Settings(check_interval=0.5))
    try:
        done(await service.start())
        when = datetime.now(UTC) + timedelta(seconds=1)
        ok(await service.schedule_event("real", RECORD, next_execution=when, parameters={"n": 1}))
        deadline = time.monotonic() + 10
        while True:
            runs = ok(await service.get_executions("real"))
            if runs and runs[0]["outcome"] != "running":
                break
            assert time.monotonic() < deadline, f"no finished run of 'real' in 10 s: {runs}"
            await asyncio.sleep(0.05)
        (run,) = runs
        assert run["outcome"] == "succeeded"
        assert run["result"] == {"ok": True, "n": 1}
        started = aware(run["start_time"])
        assert when <= started < when + timedelta(seconds=3)
        assert ok(await service.get_event("real"))["status"] == "completed"
        assert sample_jobs.CALLS == [("real", 1, {"n": 1})]
    finally:
        done(await service.shutdown(grace=1))
