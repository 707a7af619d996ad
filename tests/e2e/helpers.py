"""Helpers for end-to-end tests that run ``runner`` as a real process and watch it from outside.

A :class:`RunnerProcess` starts ``python -m runner run`` in a directory of its own, with
its JSON log on stderr written to a file, and reads what happened the way an operator
would: the log lines, ``runner history --json`` / ``runner list --json``, and (for fast
polling) the SQLite file itself through the stdlib :mod:`sqlite3` module.

Nothing here asserts on timing with tight bounds: tests wait for outcomes with
:func:`wait_for`, under generous deadlines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

DB_NAME = "runner.db"
CLI_TIMEOUT = 60.0


def controlled_environ(home: Path) -> dict[str, str]:
    """An environment for ``runner`` subprocesses: no RUNNER_* variable of the caller
    leaks in. ``PYTHONPATH`` is passed on, so the runner imports the code the tests import.
    """
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if "PYTHONPATH" in os.environ:
        environ["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return environ


def wait_for(
    predicate: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.1, what: str = ""
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy.

    Returns that value; fails the test after ``timeout`` seconds, showing the last value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what or predicate!r}; "
                f"last value: {value!r}"
            )
        time.sleep(interval)


def parse_time(value: Any) -> datetime | None:
    """A timestamp from the database or from JSON output, as an aware UTC datetime.

    The SQLite file holds naive UTC text (``2026-01-01 10:00:00.000000``); the CLI's JSON
    prints ``2026-01-01 10:00:00+00:00``. Both come back aware, in UTC.
    """
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def at_in(seconds: float, offset_hours: int = 2) -> tuple[str, datetime]:
    """A whole-second instant ``seconds`` from now (rounded up), for a one-time ``at``.

    Returns the instant written with an explicit, non-zero UTC offset (so a wrong reading
    of the offset shows) and the same instant in UTC.
    """
    instant = datetime.now(UTC) + timedelta(seconds=seconds)
    instant = instant.replace(microsecond=0) + timedelta(seconds=1)
    zone = timezone(timedelta(hours=offset_hours))
    return instant.astimezone(zone).isoformat(timespec="seconds"), instant


def sh(name: str, script: str, schedule: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An event running ``script`` through ``sh -c`` (given as argv: no shell of runner's)."""
    return {"name": name, "command": ["sh", "-c", script], "schedule": schedule, **fields}


@dataclass(frozen=True)
class Execution:
    """One execution record, read from the database or from ``runner history --json``."""

    id: int
    event: str
    scheduled_time: datetime
    attempt: int
    trigger: str
    outcome: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    runner_id: str | None = None
    config_revision: str | None = None
    result: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Execution:
        scheduled = parse_time(data["scheduled_time"])
        assert scheduled is not None, data
        return cls(
            id=int(data["execution_id"]),
            event=str(data["event"]),
            scheduled_time=scheduled,
            attempt=int(data["attempt"]),
            trigger=str(data["trigger"]),
            outcome=str(data["outcome"]),
            started_at=parse_time(data["start_time"]),
            finished_at=parse_time(data["end_time"]),
            error=data["error"],
            runner_id=data["runner_id"],
            config_revision=data["config_revision"],
            result=data["result"],
        )

    @property
    def interval(self) -> tuple[datetime, datetime]:
        """When it ran (for a finished run)."""
        assert self.started_at is not None, self
        assert self.finished_at is not None, self
        return self.started_at, self.finished_at


def runs(executions: Sequence[Execution], outcome: str | None = None) -> list[Execution]:
    """The executions that were started (not skipped, missed or coalesced), by start time.

    With ``outcome``, only those that ended so.
    """
    started = [e for e in executions if e.started_at is not None]
    if outcome is not None:
        started = [e for e in started if e.outcome == outcome]
    return sorted(started, key=lambda e: (e.started_at, e.id))


def max_overlap(intervals: Sequence[tuple[datetime, datetime]]) -> int:
    """The largest number of ``(start, end)`` intervals open at one instant.

    An interval ending at the very instant another starts does not overlap it.
    """
    points = [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals]
    points.sort(key=lambda p: (p[0], p[1]))  # ends (-1) before starts (+1) at a tie
    best = current = 0
    for _, step in points:
        current += step
        best = max(best, current)
    return best


# --- processes --------------------------------------------------------------------------


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` from /proc (``R``, ``S``, ``Z``, ...), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def process_group(pid: int) -> int | None:
    """The process group of ``pid`` from /proc, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat.rpartition(")")[2].split()[2])


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (exited, not yet reaped)."""
    return process_state(pid) not in (None, "Z", "X")


def live_group_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies do not count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if process_group(pid) == pgid and is_running(pid):
            members.append(pid)
    return members


def read_pids(path: Path) -> list[int]:
    """The process ids a job wrote to ``path``, one a line (none if it is not there)."""
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split() if line.strip().isdigit()]


def kill_groups(path: Path) -> None:
    """SIGKILL the process groups whose leaders a job wrote to ``path`` (test cleanup).

    Jobs run in sessions of their own (group id = the leader's pid), so a runner killed
    with SIGKILL, or a group stop that failed, leaves them behind; the group is killed even
    when its leader is gone.
    """
    for pid in read_pids(path):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


# --- the runner -------------------------------------------------------------------------


class RunnerProcess:
    """``runner run`` as a subprocess of the test, in ``cwd``, and the CLI beside it.

    The database is ``cwd/runner.db`` (named by ``settings.database`` in the configs
    :meth:`write_config` writes). Each :meth:`start` logs to a file of its own;
    :meth:`logs` reads the latest one.
    """

    def __init__(self, cwd: Path, config: str = "scheduler.yaml") -> None:
        self.cwd = cwd
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.started_at = 0.0
        self._starts = 0

    # --- config -------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.cwd / DB_NAME

    def config_text(self, events: Sequence[dict[str, Any]], **settings: Any) -> str:
        """A config file: ``events`` under settings that keep tests quick to stop."""
        merged = {"database": f"sqlite:///{DB_NAME}", "shutdown_grace": 1, **settings}
        return yaml.safe_dump({"settings": merged, "events": list(events)}, sort_keys=False)

    def write_config(
        self, events: Sequence[dict[str, Any]], path: Path | None = None, **settings: Any
    ) -> Path:
        """Write a config (atomically, as editors and deploy tools do) and return its path."""
        target = path or self.cwd / self.config
        write_atomic(target, self.config_text(events, **settings))
        return target

    def environ(self) -> dict[str, str]:
        return controlled_environ(self.cwd)

    # --- the process --------------------------------------------------------------------

    def start(self, *args: str, wait: bool = True) -> None:
        """Start ``runner run`` (with extra ``args``); wait for "runner started" if ``wait``."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self._starts += 1
        self.log_path = self.cwd / f"runner-{self._starts}.log"
        command = [sys.executable, "-m", "runner", "run", "--config", self.config]
        command += ["--log-format", "json", *args]
        with self.log_path.open("wb") as log, (self.cwd / "runner.out").open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.environ(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
            )
        self.started_at = time.monotonic()
        if wait:
            wait_for(
                lambda: self.logged("runner started") or self.process_exited(),
                timeout=30,
                what="runner started",
            )
            assert self.alive, f"runner exited at start:\n{self.log_text()}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def process_exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def send(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        """The exit status; fails (after killing it) if it has not exited in ``timeout``."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"runner did not exit within {timeout:g}s:\n{self.log_text()}"
            ) from None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit status."""
        self.send(sig)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL the runner (a crash) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()

    def close(self) -> None:
        """End the runner however it is: SIGTERM, then SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process.wait()

    # --- what it says -------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines of the latest start (lines that are not JSON are left out)."""
        entries = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def logged(self, message: str, **fields: Any) -> list[dict[str, Any]]:
        """The log entries whose message contains ``message`` and that have ``fields``."""
        return [
            e
            for e in self.logs()
            if message in str(e.get("message", ""))
            and all(e.get(k) == v for k, v in fields.items())
        ]

    # --- the command line beside it -----------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``runner ARGS --config ...`` in ``cwd``; with ``check``, it must exit 0."""
        done = subprocess.run(
            [sys.executable, "-m", "runner", *args, "--config", self.config],
            cwd=self.cwd,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        if check:
            assert done.returncode == 0, f"runner {' '.join(args)}: {done.stderr}"
        return done

    def history(self, name: str | None = None) -> list[Execution]:
        """``runner history [NAME] --json``, oldest first."""
        done = self.cli("history", *([name] if name else []), "--json", "-n", "1000")
        rows = [Execution.from_json(r) for r in json.loads(done.stdout)]
        return sorted(rows, key=lambda e: e.id)

    def list_events(self) -> dict[str, Any]:
        """``runner list --json``: ``{"config": {...}, "events": [...]}``."""
        data: dict[str, Any] = json.loads(self.cli("list", "--json").stdout)
        return data

    def listed(self, name: str) -> dict[str, Any] | None:
        """One event of ``runner list --json`` (None when it is not listed)."""
        events: list[dict[str, Any]] = self.list_events()["events"]
        return next((e for e in events if e["name"] == name), None)

    # --- the database file, read directly (fast enough to poll) -------------------------

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=10)) as conn:
            conn.row_factory = sqlite3.Row
            yield conn

    def recorded_process_groups(self) -> int:
        """How many running commands have their process group recorded (what the next
        runner stops if this one dies)."""
        with self._db() as conn:
            query = "SELECT count(*) FROM scheduler_state WHERE key LIKE 'process:%'"
            return int(conn.execute(query).fetchone()[0])

    def executions(self, event: str | None = None) -> list[Execution]:
        """Execution records from the SQLite file, oldest first."""
        if not self.db_path.exists():
            return []
        query = (
            "SELECT x.*, e.name AS event FROM scheduler_executions x"
            " JOIN scheduler_events e ON e.id = x.event_id"
        )
        params: tuple[str, ...] = ()
        if event is not None:
            query += " WHERE e.name = ?"
            params = (event,)
        try:
            with self._db() as conn:
                rows = conn.execute(query + " ORDER BY x.id", params).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
        return [_execution(r) for r in rows]

    def event_row(self, name: str) -> dict[str, Any] | None:
        """The ``scheduler_events`` row of ``name`` from the SQLite file."""
        if not self.db_path.exists():
            return None
        try:
            with self._db() as conn:
                row = conn.execute(
                    "SELECT * FROM scheduler_events WHERE name = ?", (name,)
                ).fetchone()
        except sqlite3.OperationalError:
            return None
        return dict(row) if row is not None else None

    def config_state(self) -> dict[str, Any] | None:
        """What the database records of the config (revision, files, last error)."""
        if not self.db_path.exists():
            return None
        try:
            with self._db() as conn:
                row = conn.execute(
                    "SELECT value FROM scheduler_state WHERE key = 'config'"
                ).fetchone()
        except sqlite3.OperationalError:
            return None
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row["value"])
        return value

    def wait_runs(
        self, event: str, count: int, outcome: str = "succeeded", timeout: float = 15.0
    ) -> list[Execution]:
        """Wait until ``event`` has ``count`` runs that ended with ``outcome``; return them."""

        def enough() -> list[Execution]:
            done = runs(self.executions(event), outcome)
            return done if len(done) >= count else []

        return wait_for(enough, timeout, what=f"{count} {outcome} runs of {event}")


def _execution(row: sqlite3.Row) -> Execution:
    scheduled = parse_time(row["scheduled_time"])
    assert scheduled is not None
    result = row["result"]
    return Execution(
        id=row["id"],
        event=row["event"],
        scheduled_time=scheduled,
        attempt=row["attempt"],
        trigger=row["trigger"],
        outcome=row["outcome"],
        started_at=parse_time(row["start_time"]),
        finished_at=parse_time(row["end_time"]),
        error=row["error"],
        runner_id=row["runner_id"],
        config_revision=row["config_revision"],
        result=json.loads(result) if isinstance(result, str) else result,
    )


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"tmp-{path.name}.new")
    temporary.write_text(text)
    os.replace(temporary, path)
