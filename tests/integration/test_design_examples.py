"""The module design's own five examples, through the library, then the three tables read
with plain SQL by the design's column names; on SQLite and PostgreSQL.

The examples are written as the design's API has them (SPEC.md does not quote them):
``schedule_event(name=..., function_name=..., interval_type=..., interval_value=...,
parameters=..., module_id=...)`` and ``register_cleanup(directory=..., pattern=...,
retention_days=..., max_files=..., max_size_mb=..., priority=..., module_id=...)``.
The design writes ``datetime.now()``; here the clock is a FakeClock, ``clock.now()``.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from runner.design import cleanup_name
from runner.jobs import JobContext
from runner.loop import Runner
from runner.result import Result
from runner.service import SchedulerService
from runner.specs import Settings
from tests.fakes import FakeClock

T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
CALLS: list[tuple[str, str, dict[str, Any]]] = []


# The module's job functions, registered under the design's names.
async def backup_database(context: JobContext, backup_type: str) -> dict[str, str]:
    CALLS.append(("backup_database", context.trace_session_id, {"backup_type": backup_type}))
    return {"backup": backup_type}


def run_maintenance() -> str:
    CALLS.append(("run_maintenance", "", {}))
    return "maintained"


def generate_weekly_report(format: str) -> str:
    CALLS.append(("generate_weekly_report", "", {"format": format}))
    raise ConnectionError("mail server unreachable")


def optimize_database() -> str:
    CALLS.append(("optimize_database", "", {}))
    return "optimized"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def service(db_url: str, clock: FakeClock) -> AsyncIterator[SchedulerService]:
    CALLS.clear()
    service = await SchedulerService.open(db_url, Settings(retry_failed_events=False), clock)
    for function in (backup_database, run_maintenance, generate_weekly_report):
        assert service.register_function(function.__name__, function).success
    service.function()(optimize_database)  # the decorator form
    yield service
    await service.shutdown(grace=1)


async def design_examples(service: SchedulerService, clock: FakeClock, logs: Path) -> list[Any]:
    """The five calls of the module design, as written there."""
    return [
        # A backup in an hour (one-time).
        await service.schedule_event(
            name="database_backup",
            function_name="backup_database",
            next_execution=clock.now() + timedelta(hours=1),
            parameters={"backup_type": "full"},
            module_id="core.database",
        ),
        # Daily maintenance.
        await service.schedule_event(
            name="daily_maintenance",
            function_name="run_maintenance",
            recurring=True,
            interval_type="days",
            interval_value=1,
            module_id="core.maintenance",
        ),
        # The weekly report, Mondays at 9:00, as a cron.
        await service.schedule_event(
            name="weekly_report",
            function_name="generate_weekly_report",
            recurring=True,
            interval_type="cron",
            parameters={"_cron_expression": "0 9 * * 1", "format": "pdf"},
            module_id="reports",
        ),
        # Weekly optimisation.
        await service.schedule_event(
            name="weekly_optimization",
            function_name="optimize_database",
            recurring=True,
            interval_type="weeks",
            interval_value=1,
            module_id="core.database",
        ),
        # Log cleanup.
        await service.register_cleanup(
            directory=str(logs),
            pattern="*.log",
            retention_days=7,
            max_files=100,
            max_size_mb=500,
            priority=1,
            module_id="core.logging",
        ),
    ]


async def tick_at(runner: Runner, clock: FakeClock, when: datetime) -> None:
    clock.set(when)
    await runner.tick()
    while runner.runs:
        await asyncio.gather(*(r.task for r in list(runner.runs.values())))


async def sql(service: SchedulerService, query: str) -> list[tuple[Any, ...]]:
    async with service.store.engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


def old_log(directory: Path, name: str, days: float, now: datetime) -> None:
    path = directory / name
    path.write_text("x")
    stamp = (now - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))


async def test_the_designs_examples_run_and_fill_the_designs_columns(
    service: SchedulerService, clock: FakeClock, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    results = await design_examples(service, clock, logs)
    assert all(isinstance(r, Result) and r.success for r in results), results
    event_ids = [r.data["event_id"] for r in results[:4]]
    assert len(set(event_ids)) == 4
    assert results[4].data["name"] == cleanup_name(str(logs), "*.log")  # no name given

    runner = Runner(service.store, service.settings, clock, "test:1", functions=service.functions)
    # An hour, then each day for a week; the report's Monday 9:00 comes before the 7th.
    monday_nine = datetime(2027, 1, 11, 9, tzinfo=UTC)
    days = [T0 + n * DAY for n in range(1, 8)]
    for when in sorted([T0 + timedelta(hours=1), *days, monday_nine]):
        await tick_at(runner, clock, when)
    old_log(logs, "old.log", 10, clock.now())
    old_log(logs, "new.log", 1, clock.now())
    cleaned = await service.run_cleanup()
    assert cleaned.success
    await runner.shutdown(1)

    assert Counter(c[0] for c in CALLS) == {
        "backup_database": 1,
        "run_maintenance": 7,
        "generate_weekly_report": 1,
        "optimize_database": 1,
    }
    assert sorted(p.name for p in logs.iterdir()) == ["new.log"]

    assert await sql(
        service,
        "SELECT name, module_id, function_name, recurring, interval_type, interval_value,"
        " status, execution_count, last_error FROM scheduler_events ORDER BY id",
    ) == [
        (
            "database_backup",
            "core.database",
            "backup_database",
            False,
            "once",
            (T0 + timedelta(hours=1)).isoformat(),
            "completed",
            1,
            None,
        ),
        (
            "daily_maintenance",
            "core.maintenance",
            "run_maintenance",
            True,
            "days",
            "1",
            "active",
            7,
            None,
        ),
        (
            "weekly_report",
            "reports",
            "generate_weekly_report",
            True,
            "cron",
            "0 9 * * 1",
            "active",
            1,
            "ConnectionError: mail server unreachable",
        ),
        (
            "weekly_optimization",
            "core.database",
            "optimize_database",
            True,
            "weeks",
            "1",
            "active",
            1,
            None,
        ),
    ]
    assert await sql(service, "SELECT status, last_error FROM scheduler_events ORDER BY id") == [
        ("completed", None),
        ("active", None),
        ("active", "ConnectionError: mail server unreachable"),
        ("active", None),
    ]
    runs = await sql(
        service,
        "SELECT e.name, x.start_time, x.end_time, x.success, x.result, x.error,"
        " x.trace_session_id FROM scheduler_executions x"
        " JOIN scheduler_events e ON e.id = x.event_id"
        " WHERE x.start_time IS NOT NULL ORDER BY x.start_time",
    )
    assert [(r[0], r[3]) for r in runs[:3]] == [
        ("database_backup", True),
        ("daily_maintenance", True),
        ("daily_maintenance", True),
    ]
    assert Counter(r[0] for r in runs) == {
        "database_backup": 1,
        "daily_maintenance": 7,
        "weekly_report": 1,
        "weekly_optimization": 1,
    }
    (report,) = [r for r in runs if r[0] == "weekly_report"]
    assert (bool(report[3]), report[5]) == (False, "ConnectionError: mail server unreachable")
    assert all(r[1] is not None and r[2] is not None and r[1] <= r[2] for r in runs)
    assert CALLS[0][1] == runs[0][6]  # the trace id the job saw is the record's
    assert len({r[6] for r in runs}) == len(runs)  # one trace id per run
    (parameters,) = await sql(
        service, "SELECT parameters FROM scheduler_events WHERE name = 'weekly_report'"
    )
    assert "_cron_expression" not in str(parameters[0])  # the schedule, not an argument
    assert "pdf" in str(parameters[0])
    ((*policy, last_run),) = await sql(
        service,
        "SELECT directory, pattern, retention_days, max_files, max_size_mb, priority,"
        " module_id, last_run FROM scheduler_cleanup_configs",
    )
    assert policy == [str(logs), "*.log", 7.0, 100, 500.0, 1, "core.logging"]
    assert as_utc(last_run) == clock.now()


def as_utc(value: Any) -> datetime:
    """A time read by plain SQL: naive UTC text on SQLite, an aware value on PostgreSQL."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.astimezone(UTC)
