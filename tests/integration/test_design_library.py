"""The module design through the library: registered job functions, ids, on SQLite and
PostgreSQL. Time is a FakeClock; a Runner sharing the service's functions executes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner import config as configs
from runner import reconciler
from runner.errors import Conflict
from runner.jobs import JobContext
from runner.loop import Runner
from runner.service import SchedulerService
from runner.specs import CommandJob, Config, EventSpec, Settings
from tests.fakes import FakeClock
from tests.integration.test_service import RECORD, failed, ok

T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def service(db_url: str, clock: FakeClock) -> AsyncIterator[SchedulerService]:
    service = await SchedulerService.open(db_url, Settings(), clock)
    yield service
    await service.shutdown(grace=1)


@pytest.fixture
async def runner(service: SchedulerService, clock: FakeClock) -> AsyncIterator[Runner]:
    """Ticked by the test; it calls what the service registered."""
    runner = Runner(service.store, Settings(), clock, "test:1", functions=service.functions)
    yield runner
    await runner.shutdown(1)


async def tick(runner: Runner) -> None:
    await runner.tick()
    while runner.runs:
        await asyncio.gather(*(r.task for r in list(runner.runs.values())))


# --- registered functions ---------------------------------------------------------------


async def test_an_event_calls_a_registered_function_by_its_name(
    service: SchedulerService, runner: Runner, clock: FakeClock
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    async def backup(context: JobContext, target: str) -> str:
        calls.append((context.event, {"target": target}))
        return f"saved {target}"

    assert ok(service.register_function("backup_database", backup)) == {
        "function_name": "backup_database"
    }
    created = await service.schedule_event(
        name="nightly",
        function_name="backup_database",
        next_execution=T0 + HOUR,
        parameters={"target": "/backups"},
    )
    assert ok(created)["function_name"] == "backup_database"
    clock.set(T0 + HOUR)
    await tick(runner)
    assert calls == [("nightly", {"target": "/backups"})]
    (run,) = ok(await service.get_executions("nightly"))
    assert (run["outcome"], run["result"]) == ("succeeded", "saved /backups")


async def test_the_decorator_registers_under_the_functions_name(
    service: SchedulerService, runner: Runner, clock: FakeClock
) -> None:
    @service.function()
    def optimize_database() -> str:
        return "optimized"

    @service.function("reports.weekly")
    def anything() -> str:
        return "reported"

    assert optimize_database() == "optimized"  # the decorator hands the function back
    assert service.functions.names() == ["optimize_database", "reports.weekly"]
    for name, function in (("opt", "optimize_database"), ("rep", "reports.weekly")):
        ok(await service.schedule_event(name, function, next_execution=T0 + HOUR))
    clock.set(T0 + HOUR)
    await tick(runner)
    results = {n: ok(await service.get_executions(n))[0]["result"] for n in ("opt", "rep")}
    assert results == {"opt": "optimized", "rep": "reported"}


async def test_an_unregistered_name_is_refused_and_an_import_path_still_works(
    service: SchedulerService,
) -> None:
    message = failed(
        await service.schedule_event("x", "backup_database", next_execution=T0 + HOUR),
        "validation_error",
    )
    assert "no function is registered as 'backup_database'" in message
    ok(await service.schedule_event("y", RECORD, next_execution=T0 + HOUR))


async def test_registering_a_bad_name_or_a_taken_one_fails(service: SchedulerService) -> None:
    def one() -> None: ...

    def other() -> None: ...

    assert "dotted identifiers" in failed(
        service.register_function("not a name", one), "validation_error"
    )
    ok(service.register_function("job", one))
    ok(service.register_function("job", one))  # the same function again: fine
    assert "already registered" in failed(service.register_function("job", other), "conflict")
    with pytest.raises(Conflict):
        service.function("job")(other)


async def test_a_name_the_runner_does_not_know_fails_the_run_not_the_runner(
    service: SchedulerService, clock: FakeClock
) -> None:
    ok(service.register_function("only_here", lambda: "x"))
    ok(await service.schedule_event("e", "only_here", next_execution=T0 + HOUR))
    elsewhere = Runner(service.store, Settings(), clock, "other:1")  # its own registry
    clock.set(T0 + HOUR)
    await tick(elsewhere)
    (run,) = ok(await service.get_executions("e"))
    assert run["outcome"] == "failed"
    assert "no function is registered as 'only_here'" in run["error"]
    await elsewhere.shutdown(1)


# --- ids --------------------------------------------------------------------------------


async def test_events_and_executions_have_ids_every_call_accepts(
    service: SchedulerService, runner: Runner, clock: FakeClock
) -> None:
    first = ok(await service.schedule_event("a", RECORD, next_execution=T0 + HOUR))
    second = ok(await service.schedule_event("b", RECORD, next_execution=T0 + HOUR))
    event_id = second["event_id"]
    assert isinstance(event_id, int)
    assert event_id != first["event_id"]
    assert ok(await service.get_event(event_id))["name"] == "b"
    assert ok(await service.get_event(str(event_id)))["name"] == "b"
    ok(await service.execute_now(event_id))
    await tick(runner)
    (run,) = ok(await service.get_executions(event_id))
    assert run["event_id"] == event_id
    assert isinstance(run["execution_id"], int)
    assert ok(await service.pause_event(event_id))["status"] == "paused"
    assert ok(await service.resume_event(event_id))["status"] == "active"
    assert ok(await service.cancel_event(event_id))["status"] == "cancelled"
    assert ok(await service.get_event("a"))["status"] == "active"
    failed(await service.get_event(99999), "not_found")
    failed(await service.get_event(2**40), "not_found")


async def test_a_name_made_of_digits_wins_over_an_id(service: SchedulerService) -> None:
    numbered = ok(await service.schedule_event("7", RECORD, next_execution=T0 + HOUR))
    others = [
        ok(await service.schedule_event(f"e{i}", RECORD, next_execution=T0 + HOUR))
        for i in range(8)
    ]
    by_id_7 = next((e for e in [numbered, *others] if e["event_id"] == 7), None)
    assert by_id_7 is not None
    assert by_id_7["name"] != "7"
    assert ok(await service.get_event("7"))["name"] == "7"
    assert ok(await service.get_event(7)) == by_id_7  # an int is always an id


# --- the config's names -------------------------------------------------------------------


def test_config_functions_name_import_paths_and_events_use_them(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    path.write_text(
        "settings:\n"
        "  functions:\n"
        f"    backup_database: {RECORD}\n"
        "  api:\n"
        "    allowed_functions: [backup_database]\n"
        "events:\n"
        "  - name: backup\n"
        "    function: backup_database\n"
        "    schedule: {every: 1d}\n"
        "  - name: typo\n"
        "    function: backup_databse\n"
        "    schedule: {every: 1d}\n"
    )
    report = configs.validate([path], {}, T0)
    assert [p.render() for p in report.errors] == [
        f"{path}:11:15: error: no function is registered as 'backup_databse': name it in"
        " settings.functions, or write module:callable (at events[1].function)"
    ]
    path.write_text(path.read_text().replace("backup_databse", "backup_database"))
    config = configs.load([path], {}, T0)
    assert dict(config.settings.functions) == {"backup_database": RECORD}
    assert config.settings.api.allowed_functions == ("backup_database",)


def test_config_functions_must_map_names_to_import_paths(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    path.write_text("settings:\n  functions:\n    backup_database: not-a-path\n")
    (problem,) = configs.validate([path], {}, T0).errors
    assert problem.line == 3
    assert "a registered name stands for module:callable" in problem.message


# --- the design's columns -----------------------------------------------------------------


async def test_a_runs_trace_id_is_in_its_record_its_context_and_its_log_lines(
    service: SchedulerService,
    runner: Runner,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok(service.register_function("traced", lambda context: context.trace_session_id))
    ok(await service.schedule_event("fn", "traced", next_execution=T0 + HOUR))
    command = EventSpec(
        name="cmd",
        schedule={"at": (T0 + HOUR).isoformat(), "timezone": "UTC"},
        job=CommandJob(("sh", "-c", "echo trace=$RUNNER_TRACE_ID")),
    )
    await reconciler.apply(service.store, Config(Settings(), (command,), revision="r"), T0)
    clock.set(T0 + HOUR)
    with caplog.at_level(logging.INFO):
        await tick(runner)
    (fn_run,) = ok(await service.get_executions("fn"))
    (cmd_run,) = ok(await service.get_executions("cmd"))
    trace, cmd_trace = fn_run["trace_session_id"], cmd_run["trace_session_id"]
    assert len({trace, cmd_trace}) == 2
    assert all(len(t) == 32 for t in (trace, cmd_trace))
    assert fn_run["result"] == trace  # the job's context carries it
    assert cmd_run["result"]["stdout"] == f"trace={cmd_trace}\n"  # RUNNER_TRACE_ID
    lines = [(r.getMessage(), getattr(r, "trace_session_id", None)) for r in caplog.records]
    assert ("run started", trace) in lines
    assert ("run succeeded", trace) in lines
    assert (f"trace={cmd_trace}", cmd_trace) in lines  # the command's own output


async def test_last_error_is_the_error_of_the_latest_run(
    service: SchedulerService, runner: Runner, clock: FakeClock
) -> None:
    outcomes = iter([RuntimeError("disk full"), None])

    def flaky() -> str:
        error = next(outcomes)
        if error is not None:
            raise error
        return "fine"

    ok(service.register_function("flaky", flaky))
    ok(await service.schedule_event("f", "flaky", next_execution=T0 + HOUR, retry={"delay": 60}))
    clock.set(T0 + HOUR)
    await tick(runner)
    assert ok(await service.get_event("f"))["last_error"] == "RuntimeError: disk full"
    clock.set(T0 + HOUR + timedelta(seconds=60))
    await tick(runner)
    event = ok(await service.get_event("f"))
    assert (event["status"], event["last_error"]) == ("completed", None)
