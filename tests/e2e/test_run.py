"""``runner run`` as a container runs it: a real process on a real SQLite file, watched from
outside through its JSON log, ``runner history``/``runner list`` and the database file.

No test asserts tight timing: each waits for an outcome under a generous deadline, and
bounds on gaps are wide enough for a noisy machine while still telling right from wrong.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.api_helpers import free_port
from tests.e2e.helpers import (
    DB_NAME,
    RunnerProcess,
    at_in,
    is_running,
    kill_groups,
    live_group_members,
    max_overlap,
    parse_time,
    read_pids,
    runs,
    sh,
    wait_for,
    write_atomic,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[RunnerProcess]:
    """A :class:`RunnerProcess` in ``tmp_path`` (not started); always ended afterwards."""
    process = RunnerProcess(tmp_path)
    try:
        yield process
    finally:
        process.close()


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def whole_second(value: datetime) -> bool:
    return value.microsecond == 0


def consecutive_seconds(times: list[datetime]) -> bool:
    """True when ``times`` (sorted, distinct) are exactly one second apart each."""
    return all(later - earlier == SECOND for earlier, later in itertools.pairwise(times))


# --- 1. interval jobs fire on time; SIGTERM stops cleanly --------------------------------


def test_interval_job_fires_at_its_scheduled_times_and_sigterm_stops_cleanly(
    runner: RunnerProcess,
) -> None:
    ticks = runner.cwd / "ticks.txt"
    runner.write_config(
        [sh("tick", 'echo "$RUNNER_SCHEDULED_TIME" >> ticks.txt', {"every": "1s"}, timeout=10)]
    )
    runner.start()

    runner.wait_runs("tick", 3)
    stopping = time.monotonic()
    assert runner.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - stopping < 8, "SIGTERM with nothing running should stop promptly"
    assert runner.logged("runner stopped"), runner.log_text()

    history = runner.history("tick")
    done = runs(history, "succeeded")
    assert len(done) >= 3
    # Every occurrence the schedule produced is on record, one second apart, on the second.
    scheduled = sorted({e.scheduled_time for e in history})
    assert len(scheduled) == len(history), "one record per occurrence"
    assert all(whole_second(t) for t in scheduled), scheduled
    assert consecutive_seconds(scheduled), scheduled
    for run in done:
        assert run.trigger == "schedule"
        assert run.attempt == 1
        assert run.started_at is not None
        lateness = seconds(run.started_at - run.scheduled_time)
        assert 0 <= lateness < 1, f"started {lateness:.3f}s after its time: {run}"
        assert run.runner_id is not None
        assert run.runner_id.endswith(f":{runner.pid}")
    # The command ran each time, and was told which occurrence it was.
    written = {datetime.fromisoformat(line) for line in ticks.read_text().split()}
    assert written == {run.scheduled_time for run in done}
    started = runner.logged("run started", event="tick", trigger="schedule")
    assert len(started) >= len(done)
    assert all(0 <= entry["lateness_s"] < 1 for entry in started), started


# --- 2. one-time jobs run once ------------------------------------------------------------


def test_one_time_job_runs_exactly_once_and_completes(runner: RunnerProcess) -> None:
    at, instant = at_in(1)  # written as +02:00
    assert not at.endswith(("Z", "+00:00"))
    runner.write_config([sh("launch", "echo launched >> launch.txt", {"at": at})])
    runner.start()

    wait_for(
        lambda: (runner.event_row("launch") or {}).get("status") == "completed",
        timeout=20,
        what="launch completed",
    )
    time.sleep(1)  # long enough for a wrong second run to show
    listed = runner.listed("launch")
    assert listed is not None
    assert listed["status"] == "completed"
    assert listed["next_execution"] is None
    assert listed["execution_count"] == 1
    history = runner.history("launch")
    assert len(history) == 1, history
    (run,) = history
    assert run.outcome == "succeeded"
    assert run.scheduled_time == instant  # the offset was read, not ignored
    assert run.started_at is not None
    assert run.started_at >= instant
    assert (runner.cwd / "launch.txt").read_text() == "launched\n"


# --- 3. retries follow the backoff ---------------------------------------------------------


def test_failed_run_is_retried_with_backoff_then_given_up(runner: RunnerProcess) -> None:
    at, instant = at_in(1)
    runner.write_config(
        [
            sh(
                "flaky",
                'echo "$RUNNER_ATTEMPT" >> attempts.txt; exit 3',
                {"at": at},
                retry={"attempts": 2, "delay": 1, "backoff": 2},
            )
        ]
    )
    runner.start()

    wait_for(
        lambda: (runner.event_row("flaky") or {}).get("status") == "failed",
        timeout=25,
        what="flaky to fail for good",
    )
    row = runner.event_row("flaky")
    assert row is not None
    assert row["retry_at"] is None, "no retry left pending"
    assert row["next_execution"] is None
    history = runner.history("flaky")
    assert [e.attempt for e in history] == [1, 2, 3], history
    assert [e.trigger for e in history] == ["schedule", "retry", "retry"]
    assert all(e.outcome == "failed" for e in history), history
    assert all(e.scheduled_time == instant for e in history), "a retry is of the same occurrence"
    assert all("exit code 3" in (e.error or "") for e in history), history
    first, second, third = (e.interval for e in history)
    gap1 = seconds(second[0] - first[1])
    gap2 = seconds(third[0] - second[1])
    assert 0.9 <= gap1 < 5, f"first retry after {gap1:.3f}s, expected about 1s"
    assert 1.9 <= gap2 < 5, f"second retry after {gap2:.3f}s, expected about 2s"
    assert (runner.cwd / "attempts.txt").read_text().split() == ["1", "2", "3"]
    listed = runner.listed("flaky")
    assert listed is not None
    assert listed["status"] == "failed"


# --- 4. a timeout stops the whole process group -------------------------------------------


def test_timeout_kills_the_whole_process_group(runner: RunnerProcess) -> None:
    at, _ = at_in(1)
    script = "echo $$ > shell.pid; sleep 300 & echo $! > child.pid; sleep 300"
    runner.write_config([sh("stuck", script, {"at": at}, timeout=1, retry={"attempts": 0})])
    shell_pids, child_pids = runner.cwd / "shell.pid", runner.cwd / "child.pid"
    try:
        runner.start()
        (run,) = runner.wait_runs("stuck", 1, outcome="timed_out", timeout=20)
        assert "timed out" in (run.error or ""), run
        assert run.finished_at is not None
        (shell,) = read_pids(shell_pids)
        (child,) = read_pids(child_pids)
        # The shell and its background child were in the job's own group, and all of it went.
        wait_for(lambda: not is_running(shell), timeout=10, what=f"shell {shell} to end")
        wait_for(lambda: not is_running(child), timeout=10, what=f"background sleep {child}")
        assert live_group_members(shell) == []
        assert runner.alive
    finally:
        kill_groups(shell_pids)


# --- 5. crash recovery -----------------------------------------------------------------------


def test_runs_left_by_a_killed_runner_are_failed_and_retried(runner: RunnerProcess) -> None:
    at, instant = at_in(1)
    script = 'echo $$ >> started.pid; if [ "$RUNNER_ATTEMPT" = 1 ]; then exec sleep 30; fi'
    runner.write_config([sh("long", script, {"at": at}, retry={"attempts": 2, "delay": 1})])
    started = runner.cwd / "started.pid"
    try:
        runner.start()
        wait_for(lambda: read_pids(started), timeout=20, what="the job to start")
        wait_for(lambda: [e for e in runner.executions("long") if e.outcome == "running"])
        runner.kill()  # kill -9 while the job runs

        runner.start()
        (retried,) = runner.wait_runs("long", 1, timeout=20)
        history = runner.history("long")
        assert [(e.attempt, e.outcome) for e in history] == [(1, "failed"), (2, "succeeded")]
        crashed = history[0]
        assert "runner stopped" in (crashed.error or ""), crashed
        assert crashed.finished_at is not None
        assert retried.trigger == "retry"
        assert retried.scheduled_time == crashed.scheduled_time == instant
        assert retried.started_at is not None
        assert seconds(retried.started_at - crashed.finished_at) >= 0.9  # the retry delay
        assert runner.logged("recovered 1 runs"), runner.log_text()
        assert len(read_pids(started)) == 2
    finally:
        kill_groups(started)


# --- 6. the concurrency limit -------------------------------------------------------------


def test_at_most_max_concurrent_executions_run_at_once(runner: RunnerProcess) -> None:
    at, instant = at_in(1)
    names = [f"job-{i}" for i in range(5)]
    runner.write_config(
        [sh(name, "sleep 2", {"at": at}) for name in names], max_concurrent_executions=2
    )
    runner.start()

    wait_for(
        lambda: len(runs(runner.executions(), "succeeded")) == 5,
        timeout=30,
        what="all five runs to succeed",
    )
    history = runner.history()
    assert sorted(e.event for e in history) == names
    assert all(e.outcome == "succeeded" for e in history), history
    assert all(e.scheduled_time == instant and e.attempt == 1 for e in history), history
    overlap = max_overlap([e.interval for e in history])
    assert overlap <= 2, f"{overlap} ran at once with max_concurrent_executions: 2"
    assert overlap == 2, "the limit of 2 should be used, not runs one by one"


# --- 7. overlap: forbid --------------------------------------------------------------------


def test_overlap_forbid_skips_occurrences_while_the_previous_run_runs(
    runner: RunnerProcess,
) -> None:
    runner.write_config([sh("slow", "sleep 2.5", {"every": "1s"}, overlap="forbid", timeout=10)])
    runner.start()

    runner.wait_runs("slow", 2, timeout=20)
    history = runner.executions("slow")
    done = runs(history, "succeeded")
    skipped = [e for e in history if e.outcome == "skipped"]
    assert len(skipped) >= 2, history
    for record in skipped:
        assert "previous run still running" in (record.error or ""), record
        decided = record.finished_at
        assert decided is not None
        assert any(
            e.started_at is not None
            and e.started_at <= decided <= (e.finished_at or decided) + SECOND / 4
            for e in runs(history)
        ), f"{record} was skipped while nothing ran"
    for earlier, later in itertools.pairwise(done):
        assert later.interval[0] >= earlier.interval[1], f"{earlier} overlaps {later}"
    # No occurrence vanished: each second is on record exactly once.
    scheduled = [e.scheduled_time for e in history]
    assert len(set(scheduled)) == len(scheduled), history
    assert consecutive_seconds(sorted(scheduled)), sorted(scheduled)
    assert runner.logged("occurrence skipped", event="slow")


# --- 8. live reload ------------------------------------------------------------------------

BROKEN_YAML = """\
settings: {database: "sqlite:///runner.db", shutdown_grace: 1}
events:
  - name: first
    command: ["sh", "-c", "echo first"]
    schedule: {every: 1s
  - name: second
"""


def test_live_reload_applies_changes_and_survives_a_broken_config(
    runner: RunnerProcess,
) -> None:
    first = sh("first", "echo first", {"every": "1s"})
    second = sh("second", "echo second >> second.txt", {"every": "1s"})
    runner.write_config([first])
    runner.start()
    runner.wait_runs("first", 1)
    revision = runner.list_events()["config"]["revision"]

    # A new event: applied within a few seconds, listed, and run.
    runner.write_config([first, second])
    wait_for(lambda: runner.event_row("second"), timeout=10, what="second to be applied")
    listing = runner.list_events()
    assert {e["name"] for e in listing["events"]} == {"first", "second"}
    assert listing["config"]["revision"] != revision
    assert listing["config"]["error"] is None
    runner.wait_runs("second", 1)
    assert runner.logged("config applied")

    # A YAML syntax error: logged with file:line:col, recorded, and otherwise ignored.
    write_atomic(runner.cwd / runner.config, BROKEN_YAML)
    located = re.compile(r"scheduler\.yaml:\d+:\d+: error: ")
    wait_for(
        lambda: [
            e
            for e in runner.logs()
            if e.get("level") == "error" and located.search(str(e.get("message")))
        ],
        timeout=10,
        what="an error log line naming file:line:col",
    )
    state = str(
        wait_for(
            lambda: (runner.config_state() or {}).get("error"),
            timeout=10,
            what="the recorded error",
        )
    )
    assert "scheduler.yaml:" in state
    # `runner list` shows it. The config on disk is broken, so the database is named.
    broken_listing = runner.cli("list", "--json", "--db", f"sqlite:///{DB_NAME}", check=False)
    assert runner.alive
    before = len(runs(runner.executions("first"), "succeeded"))
    runner.wait_runs("first", before + 2)  # the last good config keeps running
    assert runner.alive
    assert runner.event_row("second") is not None, "nothing of the last good config was lost"

    # Fixed again: applied, and the error is cleared.
    runner.write_config([first])
    wait_for(
        lambda: (runner.event_row("second") or {}).get("status") == "removed",
        timeout=10,
        what="second removed",
    )
    assert runner.listed("second") is None, "a removed event is not listed"
    assert runs(runner.history("second"), "succeeded"), "its history is kept"
    assert runner.list_events()["config"]["error"] is None

    assert broken_listing.returncode == 0, broken_listing.stderr
    shown = json.loads(broken_listing.stdout)
    assert "scheduler.yaml:" in (shown["config"]["error"] or ""), shown["config"]
    assert {e["name"] for e in shown["events"]} == {"first", "second"}


@pytest.mark.parametrize("watched", ["directory", "file"])
def test_live_reload_follows_a_configmap_symlink_swap(tmp_path: Path, watched: str) -> None:
    conf = tmp_path / "conf"
    runner = RunnerProcess(tmp_path, "conf" if watched == "directory" else "conf/scheduler.yaml")
    alpha = sh("alpha", "echo alpha", {"every": "1s"})
    beta = sh("beta", "echo beta >> beta.txt", {"every": "1s"})
    runner.write_config([alpha], path=conf / "..v1" / "scheduler.yaml")
    os.symlink("..v1", conf / "..data")
    os.symlink("..data/scheduler.yaml", conf / "scheduler.yaml")
    try:
        runner.start()
        runner.wait_runs("alpha", 1)

        # What the kubelet does: a new version directory, then one atomic swap of ..data.
        runner.write_config([alpha, beta], path=conf / "..v2" / "scheduler.yaml")
        os.symlink("..v2", conf / "..data_tmp")
        os.replace(conf / "..data_tmp", conf / "..data")
        for entry in (conf / "..v1").iterdir():
            entry.unlink()
        (conf / "..v1").rmdir()

        wait_for(lambda: runner.event_row("beta"), timeout=10, what="the swapped config")
        runner.wait_runs("beta", 1)
        assert runner.alive
        assert runner.list_events()["config"]["error"] is None
    finally:
        runner.close()


# --- 9. one runner per SQLite file -----------------------------------------------------------


def test_a_second_runner_on_the_same_sqlite_file_is_refused(runner: RunnerProcess) -> None:
    runner.write_config([sh("tick", "echo tick", {"every": "1s"})])
    runner.start()
    runner.wait_runs("tick", 1)

    begun = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "runner", "run", "--config", runner.config, "--log-format", "json"],
        cwd=runner.cwd,
        env=runner.environ(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 1, second
    assert time.monotonic() - begun < 15, "refused at once, not after waiting"
    assert "another `runner run`" in second.stderr, second.stderr
    assert f"pid {runner.pid}" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr

    # Other commands work beside the running one, which goes on.
    listed = runner.listed("tick")
    assert listed is not None
    assert listed["status"] == "active"
    assert runner.history("tick")
    before = len(runs(runner.executions("tick"), "succeeded"))
    runner.wait_runs("tick", before + 1)
    assert runner.alive


def test_a_runner_of_a_large_config_starts_afresh_keeping_its_pid_and_its_lock(
    runner: RunnerProcess,
) -> None:
    # A thousand declarations: once applied, the runner executes itself again to shed
    # what applying them left in memory. It stays the process that was started (signals,
    # the lock, its runner_id) and runs what it is asked to.
    hourly = [sh(f"idle-{i:04d}", "true", {"every": "1h"}) for i in range(1000)]
    runner.write_config([sh("manual", "echo manual >> manual.txt", {"every": "1h"}), *hourly])
    runner.start()
    assert "--handover" in Path(f"/proc/{runner.pid}/cmdline").read_text()
    (started,) = runner.logged("runner started")
    assert started["runner_id"].endswith(f":{runner.pid}")
    second = runner.cli("run", "--log-format", "json", check=False)
    assert second.returncode == 1, second.stderr
    assert f"pid {runner.pid}" in second.stderr, second.stderr
    runner.cli("trigger", "manual")
    (manual,) = runner.wait_runs("manual", 1, timeout=20)
    assert manual.runner_id == started["runner_id"]
    assert len(runner.list_events()["events"]) == 1001
    assert runner.stop() == 0
    assert runner.logged("runner stopped")


# --- 10. --once, trigger, pause and resume ------------------------------------------------


def test_run_once_runs_what_is_due_and_exits_when_it_is_done(runner: RunnerProcess) -> None:
    past, instant = at_in(-5)
    future, _ = at_in(3600)
    runner.write_config(
        [
            sh("due", "sleep 1; echo done >> due.txt", {"at": past}),
            sh("later", "echo later >> later.txt", {"at": future}),
        ]
    )
    runner.start("--once", wait=False)
    assert runner.wait_exit(timeout=30) == 0, runner.log_text()

    history = runner.history()
    assert [(e.event, e.outcome) for e in history] == [("due", "succeeded")], history
    assert history[0].scheduled_time == instant
    assert (runner.cwd / "due.txt").read_text() == "done\n"
    assert not (runner.cwd / "later.txt").exists()
    listed = runner.listed("due")
    assert listed is not None
    assert listed["status"] == "completed"


def test_run_once_does_not_chase_occurrences_that_fall_due_while_it_runs(
    runner: RunnerProcess,
) -> None:
    # A job that outlasts its interval: while it runs, the next occurrence falls due. A
    # burst run must still end once what was due at its start has run.
    runner.write_config([sh("slow", "sleep 1.5", {"every": "1s"})])
    runner.cli("apply")

    def due() -> bool:
        next_due = parse_time((runner.event_row("slow") or {}).get("next_execution"))
        return next_due is not None and next_due < datetime.now(UTC) - SECOND / 5

    wait_for(due, timeout=10, what="slow to be due")
    runner.start("--once", wait=False)
    try:
        code = runner.wait_exit(timeout=7)
    finally:
        runner.close()
    assert code == 0
    assert len(runs(runner.executions("slow"))) == 1, runner.executions("slow")


def test_trigger_pause_and_resume_reach_a_running_runner(runner: RunnerProcess) -> None:
    runner.write_config(
        [
            sh("manual", "echo manual >> manual.txt", {"every": "1h"}),
            sh("ticker", "echo tick", {"every": "1s"}),
        ]
    )
    runner.start()
    runner.wait_runs("ticker", 1)

    done = runner.cli("trigger", "manual")
    assert "run requested" in done.stdout
    (manual,) = runner.wait_runs("manual", 1, timeout=10)
    assert manual.trigger == "manual"
    assert (runner.cwd / "manual.txt").read_text() == "manual\n"

    runner.cli("pause", "ticker")
    paused_at = datetime.now(UTC)
    assert (runner.event_row("ticker") or {}).get("paused") == 1
    time.sleep(2.5)
    late = [
        e
        for e in runner.executions("ticker")
        if e.started_at is not None and e.started_at > paused_at + SECOND / 2
    ]
    assert late == [], "ran while paused"

    runner.cli("resume", "ticker")
    resumed_at = datetime.now(UTC)
    wait_for(
        lambda: [
            e
            for e in runs(runner.executions("ticker"), "succeeded")
            if e.started_at is not None and e.started_at > resumed_at
        ],
        timeout=10,
        what="ticker to run again after resume",
    )
    assert runner.alive


def test_a_trigger_from_another_process_wakes_an_idle_runner_at_once(
    runner: RunnerProcess,
) -> None:
    # Nothing is due for an hour and check_interval is a minute: the runner sleeps. The
    # CLI's write to the SQLite file wakes it (inotify), not the next poll a minute on.
    runner.write_config(
        [sh("manual", "echo manual >> manual.txt", {"every": "1h"})], check_interval=60
    )
    runner.start()
    time.sleep(1)  # past start-up's turns: asleep
    runner.cli("trigger", "manual")
    (manual,) = runner.wait_runs("manual", 1, timeout=20)
    assert manual.trigger == "manual"
    assert (runner.cwd / "manual.txt").read_text() == "manual\n"


# --- 11. SIGTERM while a job runs ---------------------------------------------------------


def test_sigterm_interrupts_a_running_job_after_the_shutdown_grace(runner: RunnerProcess) -> None:
    at, _ = at_in(1)
    runner.write_config(
        [
            sh("long", "echo $$ > job.pid; exec sleep 30", {"at": at}, timeout=60),
            # Ends as soon as it is told to: within the grace, so it must not be interrupted.
            sh("short", "until [ -e go ]; do sleep 0.05; done", {"at": at}, timeout=60),
        ],
        shutdown_grace=1,
    )
    pidfile = runner.cwd / "job.pid"
    try:
        runner.start()
        wait_for(lambda: read_pids(pidfile), timeout=20, what="the job to start")
        wait_for(
            lambda: len([e for e in runner.executions() if e.outcome == "running"]) == 2,
            what="both jobs running",
        )

        stopping = time.monotonic()
        runner.send(signal.SIGTERM)
        (runner.cwd / "go").touch()
        assert runner.wait_exit(timeout=15) == 0, runner.log_text()
        assert time.monotonic() - stopping < 10, "grace 1s: the runner should stop soon after"
        (run,) = runner.history("long")
        assert run.outcome == "interrupted", run
        assert run.finished_at is not None
        assert "interrupted" in (run.error or ""), run
        (short,) = runner.history("short")
        assert short.outcome == "succeeded", "a job ending within the grace is let finish"
        (job,) = read_pids(pidfile)
        wait_for(lambda: not is_running(job), timeout=10, what="the job's process to end")
        assert runner.logged("runner stopped")
    finally:
        kill_groups(pidfile)


# --- 10. sync functions that never return -------------------------------------------------

JOBS_MODULE = """\
import threading
import time


def forever():
    threading.Event().wait()


def nap(seconds):
    time.sleep(seconds)
    return "rested"
"""


def function_event(
    name: str, call: str, schedule: dict[str, str], **fields: object
) -> dict[str, object]:
    """An event calling ``call`` of the ``jobs_here`` module in the runner's directory."""
    return {"name": name, "function": f"jobs_here:{call}", "schedule": schedule, **fields}


def test_sync_functions_that_never_return_hold_no_slot_and_sigterm_still_exits(
    runner: RunnerProcess,
) -> None:
    (runner.cwd / "jobs_here.py").write_text(JOBS_MODULE)
    stuck_at, _ = at_in(1)
    later_at, _ = at_in(3)
    no_retry = {"attempts": 0}
    runner.write_config(
        [
            function_event("stuck-1", "forever", {"at": stuck_at}, timeout=0.5, retry=no_retry),
            function_event("stuck-2", "forever", {"at": stuck_at}, timeout=0.5, retry=no_retry),
            function_event("after", "nap", {"at": later_at}, parameters={"seconds": 0}, timeout=2),
        ],
        max_concurrent_executions=2,
        shutdown_grace=1,
    )
    runner.start()

    runner.wait_runs("stuck-1", 1, outcome="timed_out", timeout=20)
    runner.wait_runs("stuck-2", 1, outcome="timed_out", timeout=20)
    # Both threads are still blocked, yet the limit of 2 counts running executions only.
    (after,) = runner.wait_runs("after", 1, outcome="succeeded", timeout=20)
    assert after.result == "rested", after

    stopping = time.monotonic()
    assert runner.stop(signal.SIGTERM, timeout=15) == 0, runner.log_text()
    assert time.monotonic() - stopping < 10, "threads that never return must not hold the exit"


def test_raising_max_concurrent_executions_live_lets_more_sync_functions_run_at_once(
    runner: RunnerProcess,
) -> None:
    (runner.cwd / "jobs_here.py").write_text(JOBS_MODULE)
    names = ["nap-1", "nap-2", "nap-3"]
    # Three 1 s naps due at once, each allowed 1.8 s: with one thread, the second and
    # third would wait for the first and run out of time.
    every = {"every": "3s"}
    naps = [function_event(n, "nap", every, parameters={"seconds": 1}, timeout=1.8) for n in names]
    runner.write_config(naps[:1], max_concurrent_executions=1)
    runner.start()
    runner.wait_runs("nap-1", 1)

    runner.write_config(naps, max_concurrent_executions=3)
    for name in names:
        runner.wait_runs(name, 2, timeout=20)
    late = [e for e in runner.executions() if e.outcome == "timed_out"]
    assert late == [], f"runs waited for a thread after the limit rose to 3: {late}"


# --- 11. a config file rewritten slowly, in place ------------------------------------------


def test_a_config_rewritten_slowly_in_place_is_applied_once_whole(runner: RunnerProcess) -> None:
    names = [f"job-{i:02}" for i in range(20)]
    hourly = {"every": "1h"}
    runner.write_config([sh(n, "true", hourly) for n in names])
    runner.start()
    wait_for(lambda: runner.event_row(names[-1]), what="the first config applied")
    runner.cli("trigger", names[0])
    runner.wait_runs(names[0], 1)

    # The same events with a new command, written into the same file a few events at a
    # time: every prefix the runner could read is valid YAML declaring fewer events.
    text = runner.config_text([sh(n, "echo new", hourly) for n in names])
    header, _, items = text.partition("events:\n")
    chunks = [header + "events:\n", *re.split(r"(?m)^(?=- name: )", items)[1:]]
    path = runner.cwd / runner.config
    with path.open("w") as file:
        for chunk in chunks:
            file.write(chunk)
            file.flush()
            time.sleep(0.05)

    updated = wait_for(
        lambda: runner.logged("config applied: Plan: 0 to create, 20 to update"),
        timeout=20,
        what="the whole file applied",
    )
    applied = [e["message"] for e in runner.logged("config applied")]
    assert len(updated) == 1
    assert not [m for m in applied if "0 to delete" not in m], applied
    assert {e["name"] for e in runner.list_events()["events"]} == set(names)
    assert runs(runner.history(names[0]), "succeeded"), "the history is kept"


# --- 12. SIGHUP ----------------------------------------------------------------------------


def test_sighup_reloads_the_config_and_the_running_job_goes_on(runner: RunnerProcess) -> None:
    at, _ = at_in(1)
    long = sh("long", "echo $$ > job.pid; sleep 3", {"at": at}, timeout=60)
    runner.write_config([long])
    pidfile = runner.cwd / "job.pid"
    try:
        runner.start("--no-watch")  # only the signal makes it look at the file again
        wait_for(lambda: read_pids(pidfile), timeout=20, what="the job to start")

        runner.write_config([long, sh("added", "true", {"every": "1h"})])
        runner.send(signal.SIGHUP)
        wait_for(lambda: runner.event_row("added"), timeout=10, what="the reload")
        assert runner.logged("SIGHUP received"), runner.log_text()
        assert runner.alive
        (run,) = runner.wait_runs("long", 1, timeout=20)
        assert run.error is None, run
        assert runner.stop(signal.SIGTERM) == 0
    finally:
        kill_groups(pidfile)


# --- 13. jobs die with the runner ------------------------------------------------------------

ORPHAN_SCRIPT = """\
if [ "$RUNNER_ATTEMPT" = 1 ]; then
  echo $$ > leader.pid; sleep 300 & echo $! > child.pid; wait
else
  state=$(cut -d' ' -f3 "/proc/$(cat child.pid)/stat" 2>/dev/null)
  case "$state" in ""|Z) echo alone > retry.txt ;; *) echo beside > retry.txt ;; esac
fi
"""


def test_a_killed_runners_job_group_is_stopped_before_its_retry(runner: RunnerProcess) -> None:
    at, _ = at_in(1)
    event = sh(
        "job", ORPHAN_SCRIPT, {"at": at}, overlap="forbid", retry={"attempts": 1, "delay": 1}
    )
    runner.write_config([event])
    leader_pid, child_pid = runner.cwd / "leader.pid", runner.cwd / "child.pid"
    try:
        runner.start()
        wait_for(lambda: read_pids(child_pid), timeout=20, what="the job and its child")
        (leader,), (child,) = read_pids(leader_pid), read_pids(child_pid)
        # The group is recorded just after the spawn; a kill before that write commits
        # is the one window in which an orphan cannot be found (docs/operations.md, SIGKILL).
        wait_for(runner.recorded_process_groups, timeout=10, what="the group recorded")
        runner.kill()
        # The kernel kills the leader with the runner; its child outlives both, for now.
        wait_for(lambda: not is_running(leader), timeout=10, what="the leader to die")
        assert is_running(child)

        runner.start()
        wait_for(lambda: not is_running(child), timeout=10, what="the orphan to be stopped")
        assert live_group_members(leader) == []
        (retry,) = runner.wait_runs("job", 1, timeout=20)
        assert retry.attempt == 2, retry
        assert (runner.cwd / "retry.txt").read_text().strip() == "alone"
        assert runner.logged("stopped process group"), runner.log_text()
    finally:
        kill_groups(leader_pid)


# --- 14. readiness tells whether what is written lasts ---------------------------------------


def readiness(port: int) -> tuple[int, dict[str, Any]]:
    """``/readyz``: the status code and the database check."""
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    database: dict[str, Any] = response.json()["data"]["checks"]["database"]
    return response.status_code, database


def wait_not_ready(port: int) -> dict[str, Any]:
    """Wait for ``/readyz`` to answer 503; return its database check."""

    def failing() -> dict[str, Any] | None:
        status, database = readiness(port)
        return database if status == 503 else None

    return wait_for(failing, what="readiness to fail")


def test_readiness_fails_when_the_database_file_is_deleted(runner: RunnerProcess) -> None:
    port = free_port()
    runner.write_config([sh("tick", "true", {"every": "1s"})], api={"listen": f"127.0.0.1:{port}"})
    runner.start()
    runner.wait_runs("tick", 1)
    assert readiness(port)[0] == 200

    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        (runner.cwd / name).unlink(missing_ok=True)
    database = wait_not_ready(port)
    assert database["ok"] is False
    # Deleted, or replaced by the empty file a new connection creates at the same path.
    assert re.search("the database file .* was (deleted|replaced)", database["error"]), database


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs under ``tmp_path`` (mounting needs root: skipped without it)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` up; returns the file that holds the space."""
    filler = disk / "filler"
    with filler.open("wb") as file:
        try:
            while True:
                file.write(b"\0" * 65536)
                file.flush()
        except OSError:
            pass
    return filler


def test_readiness_fails_while_the_disk_is_full_and_recovers(
    runner: RunnerProcess, small_disk: Path
) -> None:
    port = free_port()
    runner.write_config(
        [sh("tick", "echo $RUNNER_EXECUTION_ID", {"every": "1s"})],
        api={"listen": f"127.0.0.1:{port}"},
        database="sqlite:///disk/runner.db",
    )
    try:
        runner.start()
        wait_for(lambda: readiness(port)[0] == 200, what="ready")
        filler = fill(small_disk)
        database = wait_not_ready(port)
        assert "full" in str(database["error"]), database
        assert runner.alive

        filler.unlink()
        wait_for(lambda: readiness(port)[0] == 200, what="ready again once writes succeed")
    finally:
        runner.close()
