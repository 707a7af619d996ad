"""Several ``runner run`` processes on one PostgreSQL database: each occurrence runs once,
a runner killed mid-job is taken over, and reconciling from all of them at once is safe."""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _pg_admin_execute, _pg_admin_url
from tests.e2e.helpers import Execution, RunnerProcess, at_in, sh, wait_for

pytestmark = pytest.mark.postgres

HOST = socket.gethostname()
JOBS = "import asyncio\n\n\nasync def work():\n    await asyncio.sleep(0.02)\n    return 'ok'\n"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the runners of one test."""
    admin = _pg_admin_url()
    name = f"runner_e2e_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[list[RunnerProcess]]:
    """Up to three runner processes, each in a directory of its own (own log, same config)."""
    made = []
    for index in range(3):
        cwd = tmp_path / f"runner-{index}"
        cwd.mkdir()
        (cwd / "jobs.py").write_text(JOBS)
        made.append(RunnerProcess(cwd))
    yield made
    for runner in made:
        runner.close()


def configure(
    runners: list[RunnerProcess], url: str, events: list[dict[str, Any]], **settings: Any
) -> None:
    for runner in runners:
        runner.write_config(events, database=url, **settings)


def executions(runner: RunnerProcess) -> list[Execution]:
    return runner.history()


@pytest.mark.parametrize("count", [2, 3])
def test_each_occurrence_runs_exactly_once(
    runners: list[RunnerProcess], pg_database: str, count: int
) -> None:
    at, _ = at_in(8)
    events = [
        {"name": f"burst-{i:03d}", "function": "jobs:work", "schedule": {"at": at}}
        for i in range(300)
    ]
    active = runners[:count]
    configure(active, pg_database, events, max_concurrent_executions=20)
    for runner in active:
        runner.start()

    def finished() -> list[Execution]:
        done = [e for e in executions(active[0]) if e.finished_at is not None]
        return done if len(done) >= 300 else []

    done = wait_for(finished, timeout=60, what="300 executions")
    assert Counter(e.event for e in done) == {e["name"]: 1 for e in events}
    assert {(e.attempt, e.outcome) for e in done} == {(1, "succeeded")}
    by_runner = Counter(e.runner_id for e in done)
    assert len(by_runner) >= 2, by_runner  # the work was shared
    assert set(by_runner) <= {f"{HOST}:{r.pid}" for r in active}


def test_a_runner_killed_mid_job_is_taken_over(
    runners: list[RunnerProcess], pg_database: str
) -> None:
    at, _ = at_in(4)
    # The first attempt outlives the runner that starts it; the retry is quick.
    script = 'if [ "$RUNNER_ATTEMPT" = 1 ]; then sleep 30; fi; echo done'
    event = sh("handover", script, {"at": at}, retry={"attempts": 1, "delay": 1})
    first, second = runners[:2]
    configure([first, second], pg_database, [event], lease_seconds=5)
    first.start()
    second.start()
    (running,) = wait_for(
        lambda: [e for e in executions(first) if e.outcome == "running"], what="the first run"
    )
    assert running.runner_id is not None
    holder, survivor = (
        (first, second) if running.runner_id.endswith(f":{first.pid}") else (second, first)
    )
    holder.kill()

    def handed_over() -> list[Execution]:
        rows = executions(survivor)
        return rows if any(e.attempt == 2 and e.outcome == "succeeded" for e in rows) else []

    rows = wait_for(handed_over, timeout=40, what="the retry on the surviving runner")
    lost, retried = rows[0], rows[-1]
    assert (lost.attempt, lost.outcome, lost.runner_id) == (1, "failed", running.runner_id)
    assert lost.error is not None
    assert "runner stopped" in lost.error
    assert retried.runner_id == f"{HOST}:{survivor.pid}"
    assert retried.scheduled_time == lost.scheduled_time


def test_reconciling_from_all_runners_at_once_is_safe(
    runners: list[RunnerProcess], pg_database: str
) -> None:
    events = [sh(f"job-{i:02d}", "true", {"every": "1h"}) for i in range(50)]
    configure(runners, pg_database, events)
    for runner in runners:
        runner.start(wait=False)
    for runner in runners:
        wait_for(lambda r=runner: r.logged("runner started"), timeout=30, what="start")  # type: ignore[misc]
    listed = runners[0].list_events()
    assert sorted(e["name"] for e in listed["events"]) == [e["name"] for e in events]
    plan = runners[1].cli("plan", "--detailed-exitcode", check=False)
    assert plan.returncode == 0, plan.stdout
    for runner in runners:
        assert runner.stop(signal.SIGTERM) == 0
        assert not [e for e in runner.logs() if e["level"] == "error"], runner.log_text()
