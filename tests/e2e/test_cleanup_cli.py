"""``runner cleanup`` as an operator runs it: a subprocess on a real tree and a SQLite file.

``runner cleanup [--dry-run] [--policy NAME] [--json] --config F --db URL`` prints a table
(or JSON), stores one report per policy in ``scheduler_cleanup_reports``, sets the
policy's ``last_run``, and exits 1 when any policy reported an error.

The tests that check what an operator sees (exit status, the table, the database file)
run ``runner`` as a subprocess; the variations (flags, dry runs, refusals) call
:func:`runner.cli.main` in the test process, which is the same code without the process
start-up, to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner import cli as runner_cli
from tests.e2e.helpers import controlled_environ

SCRIPT = Path(sys.executable).with_name("runner")
DAY = 86400.0
HEADER = ["POLICY", "SCANNED", "MATCHED", "DELETED", "FREED", "ERRORS", "SECONDS", "DIRECTORY"]

# Two policies, directories relative to the config file; "cache" runs first (priority 1).
CONFIG = """\
cleanup:
  - {name: logs, directory: logs, pattern: "*.log", retention_days: 7, priority: 20}
  - {name: cache, directory: cache, max_files: 1, priority: 1}
"""


def put(path: str | bytes | Path, age_days: float, size: int = 1) -> None:
    """A file of ``size`` bytes, last modified ``age_days`` ago (by the real clock)."""
    os.makedirs(os.path.dirname(os.fsencode(path)), exist_ok=True)
    with open(path, "wb") as out:
        out.write(b"x" * size)
    when = time.time() - age_days * DAY
    os.utime(path, (when, when))


@dataclass
class Cli:
    """``runner`` in ``cwd`` with a controlled environment, on ``cwd/r.db``."""

    cwd: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def db_path(self) -> Path:
        return self.cwd / "data" / "r.db"

    @property
    def db(self) -> str:
        return f"sqlite:///{self.db_path}"

    def write(self, text: str) -> Path:
        path = self.cwd / "scheduler.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        environ = controlled_environ(self.cwd)
        command = [str(SCRIPT), *args, "--config", "scheduler.yaml", "--db", self.db]
        done = subprocess.run(
            command, cwd=self.cwd, env=environ, capture_output=True, text=True, timeout=60
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def main(self, *args: str) -> tuple[int, str, str]:
        """``runner ARGS --config ... --db ...`` in this process: (status, stdout, stderr)."""
        self.capsys.readouterr()
        config = str(self.cwd / "scheduler.yaml")
        status = runner_cli.main([*args, "--config", config, "--db", self.db])
        out, err = self.capsys.readouterr()
        return status, out, err

    def rows(self, table: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db_path) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in ("RUNNER_DATABASE_URL", "RUNNER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "data").mkdir()
    return Cli(tmp_path, capsys)


@pytest.fixture
def trees(cli: Cli) -> Cli:
    """The CONFIG policies and their trees: 2 old logs of 3 files, 3 cache files (keep 1)."""
    cli.write(CONFIG)
    put(cli.cwd / "logs" / "new.log", 1, 10)
    put(cli.cwd / "logs" / "old.log", 8, 100)
    put(cli.cwd / "logs" / "older.log", 30, 1000)
    put(cli.cwd / "logs" / "old.txt", 30, 5)
    for day in (1, 2, 3):
        put(cli.cwd / "cache" / f"c{day}", day, 2048)
    return cli


def files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def table(stdout: str) -> list[list[str]]:
    """The table part of the output, split on runs of spaces (directory last)."""
    lines = stdout.splitlines()
    assert lines[0].split() == HEADER, stdout
    rows = []
    for line in lines[1:]:
        if ": error: " in line or ": would delete " in line:
            break
        rows.append(line.split())
    return rows


# --- as a process -------------------------------------------------------------------------------


def test_cleanup_prints_a_table_stores_reports_and_sets_last_run(trees: Cli) -> None:
    cli = trees
    assert cli("apply").returncode == 0
    done = cli("cleanup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert files(cli.cwd / "logs") == ["new.log", "old.txt"]
    assert files(cli.cwd / "cache") == ["c1"]
    rows = table(done.stdout)
    assert [r[:7] for r in rows] == [
        ["cache", "3", "3", "2", "4.0", "KiB", "0"],
        ["logs", "4", "3", "2", "1.1", "KiB", "0"],
    ]
    assert rows[0][-1] == str(cli.cwd / "cache")
    assert rows[1][-1] == str(cli.cwd / "logs")
    assert len(done.stdout.splitlines()) == 3  # header and two rows, nothing else

    reports = cli.rows("scheduler_cleanup_reports")
    assert [r["policy"] for r in reports] == ["cache", "logs"]
    logs = reports[1]
    counts = (logs["scanned"], logs["matched"], logs["deleted"], logs["bytes_freed"])
    assert counts == (4, 3, 2, 1100)
    assert json.loads(logs["errors"]) == []
    assert logs["dry_run"] == 0
    assert logs["duration"] >= 0
    assert logs["started_at"]
    assert logs["directory"] == str(cli.cwd / "logs")

    policies = {r["name"]: r for r in cli.rows("scheduler_cleanup_configs")}
    assert policies["logs"]["last_run"] is not None
    assert policies["cache"]["last_run"] is not None
    assert json.loads(policies["logs"]["last_report"])["deleted"] == 2


def test_a_missing_directory_is_reported_and_exits_1(trees: Cli) -> None:
    trees.write(CONFIG + "  - {name: gone, directory: missing, max_files: 1, priority: 5}\n")
    done = trees("cleanup")
    assert done.returncode == 1
    assert [r[0] for r in table(done.stdout)] == ["cache", "gone", "logs"]
    missing = trees.cwd / "missing"
    assert f"gone: error: cannot open {missing}: No such file or directory" in done.stdout
    assert files(trees.cwd / "logs") == ["new.log", "old.txt"]  # the others still ran
    reports = {r["policy"]: r for r in trees.rows("scheduler_cleanup_reports")}
    assert len(json.loads(reports["gone"]["errors"])) == 1


def test_system_roots_in_the_config_are_refused(cli: Cli) -> None:
    cli.write(
        """\
        cleanup:
          - {name: root, directory: /, max_files: 0}
          - {name: lib, directory: /usr/lib/, max_files: 0}
        """
    )
    done = cli("cleanup", "--dry-run")
    assert done.returncode == 1
    assert "error: refusing to clean /: it is a system directory" in done.stderr
    assert "error: refusing to clean /usr/lib: it is a system directory" in done.stderr
    assert done.stdout == ""


def test_hostile_names_are_printed_on_one_line_each(cli: Cli) -> None:
    cli.write('cleanup:\n  - {name: logs, directory: logs, pattern: "*.log", max_files: 0}\n')
    base = os.fsencode(cli.cwd / "logs")
    hostile = [b"new\nline.log", b"bad-\xff.log", b"\x1b[2Jclear.log", b"x" * 251 + b".log"]
    for name in hostile:
        put(os.path.join(base, name), 5)
    done = cli("cleanup", "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 + len(hostile), done.stdout  # header, one row, a line a name
    assert "logs: would delete new\\nline.log (count)" in lines
    assert "logs: would delete bad-\\xff.log (count)" in lines
    assert f"logs: would delete {'x' * 251}.log (count)" in lines
    assert "\x1b" not in done.stdout
    done = cli("cleanup")
    assert done.returncode == 0, done.stderr
    assert os.listdir(base) == []


# --- in process: flags and variations ---------------------------------------------------------


def test_cleanup_stores_reports_without_a_prior_apply(trees: Cli) -> None:
    status, _, err = trees.main("cleanup")
    assert status == 0, err
    assert [r["policy"] for r in trees.rows("scheduler_cleanup_reports")] == ["cache", "logs"]


def test_a_database_file_that_is_not_one_is_an_error_and_nothing_is_deleted(
    trees: Cli,
) -> None:
    trees.db_path.parent.mkdir(parents=True, exist_ok=True)
    trees.db_path.write_bytes(b"not a database, " * 64)
    before = files(trees.cwd / "logs")
    done = trees("cleanup")  # no traceback (checked by the fixture)
    assert done.returncode == 1
    assert "database" in done.stderr
    assert files(trees.cwd / "logs") == before
    assert trees.db_path.read_bytes() == b"not a database, " * 64


def test_cleanup_of_a_database_locked_past_the_busy_timeout_fails_clearly(
    trees: Cli,
) -> None:
    assert trees("apply").returncode == 0
    holder = sqlite3.connect(trees.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the busy timeout
    try:
        done = trees("cleanup")
    finally:
        holder.close()
    assert done.returncode == 1
    assert "database write failed" in done.stderr


def test_cleanup_json(trees: Cli) -> None:
    status, out, err = trees.main("cleanup", "--json")
    assert status == 0, err
    reports = json.loads(out)
    assert [r["policy"] for r in reports] == ["cache", "logs"]
    logs = reports[1]
    assert {k: logs[k] for k in ("scanned", "matched", "deleted", "bytes_freed", "errors")} == {
        "scanned": 4,
        "matched": 3,
        "deleted": 2,
        "bytes_freed": 1100,
        "errors": [],
    }
    assert logs["dry_run"] is False
    assert isinstance(logs["duration"], float)
    assert logs["directory"] == str(trees.cwd / "logs")
    assert files(trees.cwd / "logs") == ["new.log", "old.txt"]


def test_dry_run_flag_deletes_nothing_and_lists_what_would_go(trees: Cli) -> None:
    status, out, err = trees.main("cleanup", "--dry-run")
    assert status == 0, err
    assert files(trees.cwd / "logs") == ["new.log", "old.log", "old.txt", "older.log"]
    assert files(trees.cwd / "cache") == ["c1", "c2", "c3"]
    rows = table(out)
    assert [r[:4] for r in rows] == [
        ["cache", "(dry", "run)", "3"],
        ["logs", "(dry", "run)", "4"],
    ]
    assert [r[5] for r in rows] == ["2", "2"]  # DELETED: what would go
    lines = out.splitlines()
    assert "logs: would delete old.log (age)" in lines
    assert "logs: would delete older.log (age)" in lines
    assert "cache: would delete c2 (count)" in lines
    reports = trees.rows("scheduler_cleanup_reports")
    assert [r["dry_run"] for r in reports] == [1, 1]
    assert json.loads(reports[1]["would_delete"]) == ["old.log (age)", "older.log (age)"]


def test_dry_run_setting_deletes_nothing(trees: Cli) -> None:
    trees.write("settings:\n  housekeeper: {dry_run: true}\n" + CONFIG)
    status, out, err = trees.main("cleanup", "--json")
    assert status == 0, err
    assert [(r["dry_run"], r["deleted"]) for r in json.loads(out)] == [(True, 2)] * 2
    assert files(trees.cwd / "logs") == ["new.log", "old.log", "old.txt", "older.log"]
    assert files(trees.cwd / "cache") == ["c1", "c2", "c3"]


def test_dry_run_per_policy(trees: Cli) -> None:
    trees.write(CONFIG.replace("priority: 20}", "priority: 20, dry_run: true}"))
    status, out, err = trees.main("cleanup", "--json")
    assert status == 0, err
    assert [(r["policy"], r["dry_run"]) for r in json.loads(out)] == [
        ("cache", False),
        ("logs", True),
    ]
    assert files(trees.cwd / "logs") == ["new.log", "old.log", "old.txt", "older.log"]
    assert files(trees.cwd / "cache") == ["c1"]


def test_policy_flag_runs_only_the_named_policies(trees: Cli) -> None:
    status, out, err = trees.main("cleanup", "--policy", "logs")
    assert status == 0, err
    assert [r[0] for r in table(out)] == ["logs"]
    assert files(trees.cwd / "cache") == ["c1", "c2", "c3"]
    assert files(trees.cwd / "logs") == ["new.log", "old.txt"]
    assert [r["policy"] for r in trees.rows("scheduler_cleanup_reports")] == ["logs"]


def test_an_unknown_policy_is_an_error(trees: Cli) -> None:
    status, out, err = trees.main("cleanup", "--policy", "logs", "--policy", "nope")
    assert status == 1
    assert "no cleanup policy named nope" in err
    assert out == ""
    assert files(trees.cwd / "logs") == ["new.log", "old.log", "old.txt", "older.log"]


def test_a_symlinked_policy_directory_is_refused_and_exits_1(trees: Cli) -> None:
    put(trees.cwd / "elsewhere" / "old.log", 100)
    os.symlink(trees.cwd / "elsewhere", trees.cwd / "linked")
    trees.write("cleanup:\n  - {name: linked, directory: linked, max_files: 0}\n")
    status, out, _ = trees.main("cleanup")
    assert status == 1
    assert "linked: error: cannot open" in out
    assert files(trees.cwd / "elsewhere") == ["old.log"]


def test_the_database_directory_is_refused(trees: Cli) -> None:
    # --db names a file the config cannot know about: refused when the cleanup runs.
    put(trees.cwd / "data" / "old.log", 100)
    trees.write(CONFIG + "  - {name: db, directory: data, pattern: '*', max_files: 0}\n")
    status, out, _ = trees.main("cleanup")
    assert status == 1
    assert f"db: error: refusing to clean {trees.cwd / 'data'}" in out
    assert "it holds the runner's own" in out
    assert files(trees.cwd / "data") == ["old.log", "r.db"]
    assert files(trees.cwd / "logs") == ["new.log", "old.txt"]  # the others still ran


def test_the_config_directory_is_a_config_error(trees: Cli) -> None:
    trees.write(CONFIG + "  - {name: here, directory: ., max_files: 0}\n")
    status, out, err = trees.main("cleanup")
    assert status == 1
    assert "it holds the runner's own" in err
    assert "scheduler.yaml" in err
    assert out == ""
    assert files(trees.cwd / "logs") == ["new.log", "old.log", "old.txt", "older.log"]
