"""An SQLite store hears of writes to its file as they happen (inotify), so an idle runner
need not poll; reads, its own included, are not writes."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner import notify
from runner.dburl import sqlite_file
from runner.specs import EventSpec, FunctionJob
from runner.store.sql import Store

# Another process writes to the database over a connection of its own.
WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE IF NOT EXISTS probe (x)")
db.execute("INSERT INTO probe VALUES (1)")
db.commit()
"""


@pytest.fixture
async def store(migrated_sqlite_url: str) -> AsyncIterator[Store]:
    store = await Store.open(migrated_sqlite_url)
    yield store
    await store.close()


async def test_a_write_by_another_process_is_heard_and_a_read_is_not(
    store: Store, migrated_sqlite_url: str
) -> None:
    heard = asyncio.Event()
    assert store.notify_writes(heard.set)
    assert store.changed()  # what came before the watch is not known
    await store.next_due()  # a read
    await asyncio.sleep(0.2)
    assert not heard.is_set()
    assert not store.changed()
    path = sqlite_file(migrated_sqlite_url)
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", WRITER, str(path)], check=True)
    await asyncio.wait_for(heard.wait(), timeout=10)
    assert store.changed()
    assert not store.changed()  # told once


async def test_a_watch_sees_a_file_replaced_by_rename_and_ends_on_close(tmp_path: Path) -> None:
    heard: list[str] = []
    changed = asyncio.Event()

    def on_change(path: str) -> None:
        heard.append(path)
        changed.set()

    watch = notify.watch_directories([str(tmp_path)], on_change)
    assert watch is not None
    (tmp_path / "new.yaml.tmp").write_text("a: 1\n")
    (tmp_path / "new.yaml.tmp").rename(tmp_path / "scheduler.yaml")
    await asyncio.wait_for(changed.wait(), timeout=10)
    await asyncio.sleep(0.1)
    assert str(tmp_path / "scheduler.yaml") in heard
    watch.close()
    heard.clear()
    (tmp_path / "scheduler.yaml").write_text("a: 2\n")
    await asyncio.sleep(0.2)
    assert heard == []


async def test_a_settled_look_sees_a_write_that_was_announced_before_its_commit(
    store: Store, migrated_sqlite_url: str
) -> None:
    # A write reaches the WAL (inotify tells at once) a moment before its commit can be
    # read. A plain read in that moment misses it; the runner's look waits for the commit.
    now = datetime.now(UTC).replace(microsecond=0)
    spec = EventSpec(
        name="later",
        job=FunctionJob("tests.integration.sample_jobs:record"),
        schedule={"every": "1d", "timezone": "UTC"},
    )
    await store.create_user_event(spec, now)
    before = await store.next_due()
    assert before is not None
    assert before > now
    heard = asyncio.Event()
    assert store.notify_writes(heard.set)
    path = sqlite_file(migrated_sqlite_url)
    assert path is not None
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    stored = now.replace(tzinfo=None).isoformat(" ", "microseconds")  # as the store writes
    writer.execute("UPDATE scheduler_events SET triggered_at = ?", (stored,))
    assert await store.next_due() == before  # the commit is not there yet
    look = asyncio.create_task(store.next_due(settled=True))
    await asyncio.sleep(0.2)  # the look waits for the writer, however long it takes
    writer.execute("COMMIT")
    writer.close()
    assert await look == now  # a trigger is due at once
    heard.clear()
    store.changed()
    await store.next_due(settled=True)  # takes the write lock but writes nothing
    await asyncio.sleep(0.2)
    assert not heard.is_set()
