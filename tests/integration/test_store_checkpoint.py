"""The WAL of an SQLite file under the hot path: its commits leave the checkpoint (the
copy of the WAL into the database file) to the store, which runs it beside the claims on
a connection of its own, and a claim checkpoints itself when that falls behind. What the
runner writes reaches the database file, and the WAL does not grow without bound."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from runner import reconciler
from runner.results import JobResult
from runner.specs import Config, EventSpec, FunctionJob, RetryPolicy, Settings
from runner.store import hot, sql
from runner.store.sql import Finished, Store

T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
async def store(migrated_sqlite_url: str) -> AsyncIterator[Store]:
    store = await Store.open(migrated_sqlite_url, database_clock=False)
    spec = EventSpec(
        name="a",
        schedule={"every": "1m", "timezone": "UTC"},
        job=FunctionJob("tests.integration.sample_jobs:record"),
        retry=RetryPolicy(attempts=0),
    )
    await reconciler.apply(store, Config(Settings(), (spec,), revision="r"), T0)
    yield store
    await store.close()


async def claims(store: Store, count: int, wal: Path) -> int:
    """``count`` claims of one run each, every one recording the run before it: a hot
    transaction each. Returns the largest the WAL file grew (bytes)."""
    largest, ended = 0, list[Finished]()
    for minute in range(1, count + 1):
        now = T0 + timedelta(minutes=minute)
        claim = await store.start_due(now, "test:1", 1, "r", 30, None, ended)
        ended = [
            Finished(r.execution_id, r.spec, JobResult("succeeded"), now, now)
            for r in claim.started
        ]
        largest = max(largest, os.stat(wal).st_size)
        await asyncio.sleep(0)  # the store's checkpoint, if one was started, gets going
    return largest


def database_file_alone(path: Path, tmp_path: Path) -> int:
    """The executions in the database file itself, without its WAL."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as db:
        return int(db.execute("SELECT count(*) FROM scheduler_executions").fetchone()[0])


def db_path(store: Store) -> Path:
    assert store._file is not None
    return Path(store._file[0])


async def test_what_the_hot_path_writes_reaches_the_database_file(
    store: Store, tmp_path: Path
) -> None:
    path = db_path(store)
    await claims(store, 2 * sql.CHECKPOINT_EVERY, Path(f"{path}-wal"))
    for _ in range(100):  # the store's checkpoint runs beside the claims: give it a moment
        if database_file_alone(path, tmp_path) >= sql.CHECKPOINT_EVERY:
            break
        await asyncio.sleep(0.02)
    # SQLite's own checkpoint would wait for 1,000 pages: these few claims are far fewer.
    assert database_file_alone(path, tmp_path) >= sql.CHECKPOINT_EVERY


async def test_the_wal_stays_small_when_the_checkpoints_beside_the_claims_fail(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = hot.checkpoint
    assert store._write_turn is not None
    write_turn = store._write_turn

    async def failing_beside(conn: AsyncConnection) -> tuple[int, int]:
        if not write_turn.locked():  # the store's own checkpoint, beside the claims
            raise sqlite3.OperationalError("disk I/O error")
        return await real(conn)  # a claim's, after its commit

    monkeypatch.setattr(hot, "checkpoint", failing_beside)
    path = db_path(store)
    wal = Path(f"{path}-wal")
    few = await claims(store, sql.CHECKPOINT_EVERY, wal)
    many = await claims(store, 20 * sql.CHECKPOINT_EVERY, wal)
    # A claim checkpoints after its commit once one beside them failed, so the WAL starts
    # over: it grows no larger than a few checkpoint intervals' worth, not with every claim.
    assert many <= 3 * few
    assert "could not checkpoint the database's WAL" in caplog.text
