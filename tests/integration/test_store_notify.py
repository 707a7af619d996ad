"""An SQLite store hears of writes to its file as they happen (inotify), so an idle runner
need not poll; reads, its own included, are not writes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runner import notify
from runner.dburl import sqlite_file
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
