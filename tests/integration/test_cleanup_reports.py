"""``runner cleanup`` on an SQLite file at the head revision reads the registered policies
and writes its reports with sqlite3 alone (runner.store.reports): the same policies the
store reads, the same rows the store writes, and none of the store's imports."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from runner.results import CleanupReport
from runner.specs import CleanupSpec
from runner.store import readonly, reports
from runner.store.sql import Store

NOW = datetime(2027, 1, 4, 10, 0, 0, 123456, tzinfo=UTC)
REPORTS = [
    CleanupReport("logs", "/srv/logs", False, 4, 3, 2, 1100, ["one error"], [], NOW, 0.25),
    CleanupReport("cache", "/srv/cache", True, 3, 3, 0, 0, [], ["/srv/cache/c1"], NOW, 0.5),
]


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


async def test_the_file_path_reads_and_writes_what_the_store_does(
    migrated_sqlite_url: str, tmp_path: Path
) -> None:
    path = Path(migrated_sqlite_url.removeprefix("sqlite:///"))
    store = await Store.open(migrated_sqlite_url, database_clock=False)
    try:
        for name, priority in (("logs", 5), ("cache", 1)):
            spec = CleanupSpec(name, f"/srv/{name}", max_files=3, priority=priority)
            await store.register_cleanup(spec, NOW)
        copy = tmp_path / "copy.db"
        with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
            source.backup(target)  # the same policies, before any report
        await store.save_cleanup_reports(REPORTS, "host:1", NOW)
        registered = await store.cleanup_policies(source="user")
    finally:
        await store.close()
    db = readonly.connect(str(copy))
    assert db is not None
    try:
        assert reports.user_policies(db) == registered
        reports.save(db, REPORTS, "host:1", NOW)
    finally:
        db.close()
    for table in ("scheduler_cleanup_reports", "scheduler_cleanup_configs"):
        assert rows(copy, table) == rows(path, table), table


def test_a_file_that_is_not_at_the_head_revision_is_left_to_the_store(tmp_path: Path) -> None:
    assert readonly.connect(str(tmp_path / "missing.db")) is None
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES ('0001')")
    assert readonly.connect(str(old)) is None


def test_runner_cleanup_of_a_file_at_head_imports_no_sqlalchemy(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "scheduler.yaml").write_text(
        textwrap.dedent(
            """\
            settings: {database: "sqlite:///r.db"}
            cleanup:
              - {name: logs, directory: logs, max_files: 10}
            """
        )
    )

    def runner(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    runner("from runner.cli import main; main(['apply'])")  # the file, at head
    out = runner(
        "import sys; from runner.cli import main; code = main(['cleanup', '--json']);"
        " print(code, 'sqlalchemy' in sys.modules)"
    )
    assert out.splitlines()[-1] == "0 False"
    assert [r[1] for r in rows(tmp_path / "r.db", "scheduler_cleanup_reports")] == ["logs"]
