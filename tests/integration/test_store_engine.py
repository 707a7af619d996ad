"""Engines, transactions and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy import create_engine as sync_engine
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from runner.errors import StoreError
from runner.store import fresh, tables
from runner.store.engine import (
    alembic_config,
    async_url,
    create_engine,
    head,
    migrate,
    read_transaction,
    write_transaction,
)

T0 = datetime(2024, 3, 31, 1, 30, tzinfo=UTC)

# The newest migration: a fresh database must end there.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.fixture
async def make_engine(empty_db_url: str) -> AsyncIterator[Callable[[], AsyncEngine]]:
    """Makes engines on the test's database; every one is disposed afterwards."""
    engines: list[AsyncEngine] = []

    def make() -> AsyncEngine:
        engines.append(create_engine(empty_db_url))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


async def current_revisions(engine: AsyncEngine) -> list[str]:
    async with read_transaction(engine) as conn:
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        return [row[0] for row in rows]


def event_row(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "source": "user",
        "spec": {"name": name},
        "spec_hash": "s" * 64,
        "schedule_hash": "h" * 64,
        "recurring": False,
        "created_at": T0,
        "updated_at": T0,
    }


def execution_row(event_id: int | None, attempt: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "scheduled_time": T0,
        "attempt": attempt,
        "outcome": "failed",
        "created_at": T0,
    }


# --- migrations -------------------------------------------------------------------------


def schema_diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), tables.metadata))


async def test_migrated_schema_equals_tables(make_engine: Callable[[], AsyncEngine]) -> None:
    engine = make_engine()
    await migrate(engine)
    async with read_transaction(engine) as conn:
        assert await conn.run_sync(schema_diff) == []
    assert await current_revisions(engine) == [HEAD]


async def test_migrate_twice_is_a_no_op(make_engine: Callable[[], AsyncEngine]) -> None:
    engine = make_engine()
    await migrate(engine)
    async with write_transaction(engine) as conn:
        await conn.execute(insert(tables.events), event_row("kept"))
    await migrate(engine)
    assert await current_revisions(engine) == [HEAD]
    async with read_transaction(engine) as conn:
        assert await conn.scalar(select(tables.events.c.name)) == "kept"


async def test_concurrent_migrations_both_succeed(
    make_engine: Callable[[], AsyncEngine],
) -> None:
    first, second = make_engine(), make_engine()
    await asyncio.gather(migrate(first), migrate(second))
    assert await current_revisions(first) == [HEAD]
    async with read_transaction(second) as conn:
        assert await conn.run_sync(schema_diff) == []


async def test_unknown_revision_is_a_store_error(engine: AsyncEngine) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(StoreError, match="migration failed"):
        await migrate(engine)


# --- types and constraints ----------------------------------------------------------------


async def test_naive_datetime_is_refused(engine: AsyncEngine) -> None:
    naive = datetime(2024, 1, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(StatementError) as caught:
        async with write_transaction(engine) as conn:
            await conn.execute(insert(tables.state), {"key": "k", "updated_at": naive})
    assert isinstance(caught.value.orig, ValueError)


async def test_aware_datetime_round_trips_as_utc(engine: AsyncEngine) -> None:
    berlin = datetime(2024, 7, 1, 14, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    async with write_transaction(engine) as conn:
        await conn.execute(insert(tables.state), {"key": "k", "value": 1, "updated_at": berlin})
    async with read_transaction(engine) as conn:
        back = await conn.scalar(select(tables.state.c.updated_at))
    assert back == berlin
    assert back is not None
    assert back.tzinfo is UTC
    assert back == datetime(2024, 7, 1, 12, 30, 15, 123456, tzinfo=UTC)


async def test_deleting_an_event_deletes_its_executions(engine: AsyncEngine) -> None:
    ev, ex = tables.events, tables.executions
    async with write_transaction(engine) as conn:
        event_id = await conn.scalar(insert(ev).values(event_row("e")).returning(ev.c.id))
        await conn.execute(
            insert(ex),
            [execution_row(event_id, attempt) for attempt in (1, 2)],
        )
    async with write_transaction(engine) as conn:
        await conn.execute(ev.delete().where(ev.c.id == event_id))
    async with read_transaction(engine) as conn:
        assert await conn.scalar(select(func.count()).select_from(ex)) == 0


# --- SQLite specifics ---------------------------------------------------------------------


async def test_sqlite_connection_settings(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with read_transaction(engine) as conn:
            pragmas = {
                name: await conn.scalar(text(f"PRAGMA {name}"))
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
    finally:
        await engine.dispose()
    # synchronous 1 is NORMAL
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 5000,
        "foreign_keys": 1,
        "synchronous": 1,
    }


async def test_sqlite_concurrent_writers_wait_for_each_other(sqlite_url: str) -> None:
    """Read-then-write from two engines: the second waits for the lock, nobody fails."""
    engines = [create_engine(sqlite_url), create_engine(sqlite_url)]
    first_holds_lock = asyncio.Event()
    try:
        await migrate(engines[0])

        async def bump(engine: AsyncEngine, wait_first: bool) -> None:
            if wait_first:
                await first_holds_lock.wait()
            async with write_transaction(engine) as conn:
                count = await conn.scalar(select(func.count()).select_from(tables.state))
                first_holds_lock.set()
                await asyncio.sleep(0.3)
                row = {"key": f"k{count}", "value": count, "updated_at": T0}
                await conn.execute(insert(tables.state), row)

        await asyncio.gather(bump(engines[0], False), bump(engines[1], True))
        async with read_transaction(engines[1]) as conn:
            keys = (await conn.scalars(select(tables.state.c.key))).all()
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(keys) == ["k0", "k1"]


async def test_missing_sqlite_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        create_engine(f"sqlite:///{tmp_path / 'missing' / 'runner.db'}")


def sqlite_structure(conn: Connection) -> dict[str, Any]:
    """An SQLite schema as what it means: each table's columns in order, and as sets the
    lines of its CREATE statement (columns, keys, references), its indexes and their
    columns. Sets, because Alembic's batch migrations write those in no fixed order."""
    found: dict[str, Any] = {}
    for kind, name, sql in conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master"):
        if kind == "index":
            if sql is None:  # made by a UNIQUE or PRIMARY KEY: see the table's lines
                continue
            found[name] = (
                sql,
                [tuple(r) for r in conn.exec_driver_sql(f'PRAGMA index_xinfo("{name}")')],
            )
            continue
        columns = [tuple(r) for r in conn.exec_driver_sql(f'PRAGMA table_xinfo("{name}")')]
        lines = {line.strip().rstrip(",") for line in sql.splitlines()}
        found[name] = (kind, columns, lines)
    return found


async def test_a_new_sqlite_file_gets_the_schema_alembic_makes(tmp_path: Path) -> None:
    # migrate() gives a database without tables the recorded schema (runner.store.fresh)
    # instead of running every migration: it must be what the migrations make.
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        await migrate(engine)
        async with read_transaction(engine) as conn:
            created = await conn.run_sync(sqlite_structure)
            assert await conn.run_sync(schema_diff) == []
            current = await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()
    assert current == HEAD
    migrated = sync_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        with migrated.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            assert sqlite_structure(conn) == created
    finally:
        migrated.dispose()


def test_the_recorded_sqlite_schema_is_at_head() -> None:
    assert fresh.record()["revision"] == HEAD, (
        "a migration was added: record its schema with `python -m runner.store.fresh`"
    )


async def test_a_recorded_sqlite_file_is_at_head_for_alembic(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        await migrate(engine)
        async with write_transaction(engine) as conn:
            await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
        assert await current_revisions(engine) == [HEAD]
    finally:
        await engine.dispose()


async def test_in_memory_sqlite_migrates() -> None:
    engine = create_engine("sqlite://")
    try:
        await migrate(engine)
        assert await current_revisions(engine) == [HEAD]
    finally:
        await engine.dispose()


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://", "sqlite+aiosqlite://"),
        ("sqlite:///runner.db", "sqlite+aiosqlite:///runner.db"),
        ("sqlite:////var/lib/runner.db", "sqlite+aiosqlite:////var/lib/runner.db"),
        ("sqlite+aiosqlite:///runner.db", "sqlite+aiosqlite:///runner.db"),
        ("postgresql://u:p%40ss@db:5432/r", "postgresql+asyncpg://u:p%40ss@db:5432/r"),
        ("postgres://u@db/r?ssl=require", "postgresql+asyncpg://u@db/r?ssl=require"),
        ("postgresql+asyncpg://u@db/r", "postgresql+asyncpg://u@db/r"),
        ("postgresql+psycopg://u@db/r", "postgresql+psycopg://u@db/r"),
        ("postgres+asyncpg://u@db/r", "postgresql+asyncpg://u@db/r"),
    ],
)
def test_async_url(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize(
    "url", ["mysql://u:secret@db/r", "runner.db", "", "sqlite+://x", "http://example.com"]
)
def test_unsupported_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError, match="unsupported database URL") as caught:
        async_url(url)
    assert "secret" not in str(caught.value)


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    # migrate() skips importing Alembic when the database is at this head: it must be
    # the head Alembic itself would upgrade to.
    assert head() == HEAD
