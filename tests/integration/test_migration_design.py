"""Upgrading a database made before the module design's columns (revision 0005) keeps its
data, on SQLite and PostgreSQL: rows written by the old schema are read back by the new
column names."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from runner.store.engine import alembic_config, create_engine, migrate, read_transaction
from runner.store.sql import Store

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SPEC = {
    "name": "app-logs",
    "directory": "/var/log/app",
    "pattern": "*.log",
    "recursive": False,
    "exclude": [],
    "retention_days": 7,
    "max_files": 100,
    "max_size_mb": 500.5,
    "priority": 1,
    "module_id": "core.logging",
    "enabled": True,
    "dry_run": False,
}


@pytest.fixture
async def old_engine(empty_db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database migrated only up to 0005, as the code before 0006 left it."""
    engine = create_engine(empty_db_url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0005"))
    yield engine
    await engine.dispose()


def _old_rows(conn: Connection) -> None:
    """Rows in the old schema's columns (started_at, finished_at; limits only in the spec)."""
    at = T0.replace(tzinfo=None) if conn.dialect.name == "sqlite" else T0
    common = {"created": at, "spec": json.dumps({"name": "x"})}
    # interval_type "every" as 0001-0005 wrote it: "1d", or "minutes=15" for a mapping.
    for event_id, name, every in ((1, "nightly", "1d"), (2, "never-ran", "minutes=15")):
        conn.execute(
            text(
                "INSERT INTO scheduler_events (id, name, description, source, spec, spec_hash,"
                " schedule_hash, recurring, interval_type, interval_value, status, enabled,"
                " paused, execution_count, failure_count, created_at, updated_at) VALUES"
                " (:id, :name, '', 'user', :spec, 'h', 'h', true, 'every', :every, 'active',"
                " true, false, 2, 1, :created, :created)"
            ),
            {"id": event_id, "name": name, "every": every, **common},
        )
    runs = [
        (1, "failed", "exit code 3", at, at),
        (2, "succeeded", None, at, at),  # the newer run, by id: last_error is None
        (3, "skipped", "previous run still running", None, at),
    ]
    for run_id, outcome, error, started, finished in runs:
        conn.execute(
            text(
                "INSERT INTO scheduler_executions (id, event_id, scheduled_time, attempt,"
                " trigger, outcome, success, started_at, finished_at, duration, error,"
                " created_at) VALUES (:id, 1, :at, :attempt, 'schedule', :outcome,"
                " :success, :started, :finished, 1.5, :error, :at)"
            ),
            {
                "id": run_id,
                "at": at,
                "attempt": run_id,
                "outcome": outcome,
                "success": outcome == "succeeded",
                "started": started,
                "finished": finished,
                "error": error,
            },
        )
    conn.execute(
        text(
            "INSERT INTO scheduler_cleanup_configs (id, name, source, spec, spec_hash,"
            " directory, pattern, priority, module_id, enabled, created_at, updated_at)"
            " VALUES (1, 'app-logs', 'user', :spec, 'h', '/var/log/app', '*.log', 1,"
            " 'core.logging', true, :at, :at)"
        ),
        {"spec": json.dumps(SPEC), "at": at},
    )


async def test_upgrading_keeps_the_data_under_the_designs_column_names(
    old_engine: AsyncEngine,
) -> None:
    async with old_engine.begin() as conn:
        await conn.run_sync(_old_rows)
    await migrate(old_engine)
    async with read_transaction(old_engine) as conn:
        runs = (
            await conn.execute(
                text(
                    "SELECT id, start_time, end_time, success, error, trace_session_id"
                    " FROM scheduler_executions ORDER BY id"
                )
            )
        ).all()
        events = (
            await conn.execute(
                text(
                    "SELECT name, status, last_error, interval_type, interval_value"
                    " FROM scheduler_events ORDER BY id"
                )
            )
        ).all()
        policies = (
            await conn.execute(
                text(
                    "SELECT directory, pattern, retention_days, max_files, max_size_mb,"
                    " priority, module_id, last_run FROM scheduler_cleanup_configs"
                )
            )
        ).all()
    assert [(r.id, r.start_time is not None, r.end_time is not None) for r in runs] == [
        (1, True, True),
        (2, True, True),
        (3, False, True),
    ]
    assert [r.error for r in runs] == ["exit code 3", None, "previous run still running"]
    assert [r.trace_session_id for r in runs] == [None, None, None]
    # The latest run that ran (id 2) succeeded; skipped occurrences are no run.
    assert [tuple(e) for e in events] == [
        ("nightly", "active", None, "days", "1"),
        ("never-ran", "active", None, "minutes", "15"),
    ]
    assert [tuple(p) for p in policies] == [
        ("/var/log/app", "*.log", 7.0, 100, 500.5, 1, "core.logging", None)
    ]
    # And the store reads the old rows through its own names.
    store = Store(old_engine)
    (latest, *_) = await store.history("nightly")
    assert latest.execution_id == 3
    history = {r.execution_id: r for r in await store.history("nightly")}
    assert history[1].start_time == T0
    assert history[1].end_time == T0
    assert history[1].error == "exit code 3"


async def test_last_error_comes_from_the_latest_run_that_ended(old_engine: AsyncEngine) -> None:
    async with old_engine.begin() as conn:
        await conn.run_sync(_old_rows)
        await conn.execute(text("DELETE FROM scheduler_executions WHERE id = 2"))
    await migrate(old_engine)
    async with read_transaction(old_engine) as conn:
        assert await conn.scalar(
            text("SELECT last_error FROM scheduler_events WHERE name = 'nightly'")
        ) == ("exit code 3")
