"""Running one job: real subprocesses and real functions, no mocks.

A job's failure is a result (``failed``, ``timed_out``), never an exception; only
cancellation propagates, after a command's whole process group has been stopped.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import resource
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from runner import functions, jobs
from runner.jobs import (
    LINE_BYTES,
    LOG_BURST,
    LOG_RATE,
    TAIL_BYTES,
    JobContext,
    run_command,
    run_job,
)
from runner.results import JobOutcome, JobResult
from runner.specs import CommandJob, EventSpec, FunctionJob, Job

CONTEXT = JobContext(
    event="nightly-backup",
    execution_id=42,
    scheduled_time=datetime(2027, 1, 1, 2, 0, tzinfo=UTC),
    attempt=2,
)
PY = sys.executable


async def run(job: Job, limit: float | None = 10.0) -> JobResult:
    """Run ``job`` through the public entry point, as the runner does, with timeout ``limit``."""
    spec = EventSpec(name=CONTEXT.event, schedule={"every": "1m"}, job=job, timeout=limit)
    return await run_job(spec, CONTEXT)


def python(code: str, *args: str, **options: Any) -> CommandJob:
    """A command running ``code`` with this interpreter (no shell)."""
    return CommandJob((PY, "-c", textwrap.dedent(code), *args), **options)


def sh(script: str, **options: Any) -> CommandJob:
    """A command run through ``/bin/sh -c`` by the job runner itself."""
    return CommandJob((script,), shell=True, **options)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


async def wait_gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def line_written(path: Path) -> bool:
    return path.exists() and path.read_text().endswith("\n")


async def wait_for_line(path: Path, within: float = 5.0) -> None:
    """Return once a command has written a whole line to ``path``."""
    deadline = time.monotonic() + within
    while not line_written(path):
        assert time.monotonic() < deadline, f"{path} never written"
        await asyncio.sleep(0.02)


def pids_in(path: Path) -> list[int]:
    return [int(word) for word in path.read_text().split()]


def same_directory(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def not_executable(directory: Path) -> str:
    """A script without execute permission."""
    path = directory / "script.sh"
    path.write_text("#!/bin/sh\necho hi\n")
    path.chmod(0o644)
    return str(path)


# --- commands ---------------------------------------------------------------------------


async def test_argv_runs_without_a_shell() -> None:
    literal = ["two words", "$HOME", "*", "a;b|c", "'quoted'", "`id`"]
    job = python("import json, sys; print(json.dumps(sys.argv[1:]))", *literal)
    result = await run(job)
    assert result.outcome == "succeeded"
    assert json.loads(result.result["stdout"]) == literal


async def test_shell_true_runs_through_bin_sh() -> None:
    job = sh('printf "%s|%s" "$0" "$GREETING" | tr a-z A-Z', env={"GREETING": "hi there"})
    result = await run(job)
    assert result == JobResult(
        "succeeded", {"exit_code": 0, "stdout": "/BIN/SH|HI THERE", "stderr": ""}
    )


async def test_env_cwd_and_run_variables_reach_the_command(tmp_path: Path) -> None:
    names = [
        "MY_SETTING",
        "RUNNER_EVENT",
        "RUNNER_EXECUTION_ID",
        "RUNNER_SCHEDULED_TIME",
        "RUNNER_ATTEMPT",
    ]
    code = f"""
        import json, os
        print(json.dumps({{
            "env": {{name: os.environ.get(name) for name in {names!r}}},
            "inherited_path": "PATH" in os.environ,
            "cwd": os.getcwd(),
        }}))
    """
    job = python(code, env={"MY_SETTING": "a value with spaces"}, cwd=str(tmp_path))
    result = await run(job)
    assert result.outcome == "succeeded", result
    seen = json.loads(result.result["stdout"])
    assert seen["env"] == {
        "MY_SETTING": "a value with spaces",
        "RUNNER_EVENT": "nightly-backup",
        "RUNNER_EXECUTION_ID": "42",
        "RUNNER_SCHEDULED_TIME": "2027-01-01T02:00:00+00:00",
        "RUNNER_ATTEMPT": "2",
    }
    assert seen["inherited_path"] is True
    assert same_directory(seen["cwd"], tmp_path)


# (script, outcome, exit_code, error)
EXIT_CASES = [
    ("echo out; echo err >&2", "succeeded", 0, None),
    ("echo out; echo err >&2; exit 3", "failed", 3, "exit code 3"),
    ("echo out; echo err >&2; exit 255", "failed", 255, "exit code 255"),
    ("echo out; echo err >&2; kill -KILL $$", "failed", -9, "killed by SIGKILL"),
]


@pytest.mark.parametrize(("script", "outcome", "exit_code", "error"), EXIT_CASES)
async def test_exit_status_decides_the_outcome(
    script: str, outcome: JobOutcome, exit_code: int, error: str | None
) -> None:
    result = await run(sh(script))
    assert result == JobResult(
        outcome, {"exit_code": exit_code, "stdout": "out\n", "stderr": "err\n"}, error
    )


@pytest.mark.parametrize(
    "program",
    ["/nonexistent/runner-test-tool", "runner-test-no-such-tool-on-path", "not-executable"],
)
async def test_a_command_that_cannot_start_fails_without_raising(
    program: str, tmp_path: Path
) -> None:
    if program == "not-executable":
        program = not_executable(tmp_path)
    result = await run(CommandJob((program, "--flag")))
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.startswith(f"cannot start {program}: ")


async def test_timeout_stops_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    job = sh(f"sleep 60 & echo $$ $! > {pids}; sleep 60")
    started = time.monotonic()
    result = await run(job, limit=1)
    elapsed = time.monotonic() - started
    assert result.outcome == "timed_out"
    assert result.error == "timed out after 1s; process group stopped"
    assert 1 <= elapsed < 4
    shell_pid, background_pid = pids_in(pids)
    assert await wait_gone(shell_pid)
    assert await wait_gone(background_pid)  # the child the shell left behind, too


async def test_timeout_kills_a_command_that_ignores_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "STOP_GRACE", 0.5)
    marks, pid_file = tmp_path / "signals", tmp_path / "pid"
    code = f"""
        import os, signal, time
        def note(signum, frame):
            with open({str(marks)!r}, "a") as f:
                f.write("TERM\\n")
        signal.signal(signal.SIGTERM, note)
        with open({str(pid_file)!r}, "w") as f:
            f.write(f"{{os.getpid()}}\\n")
        while True:
            time.sleep(1)
    """
    started = time.monotonic()
    result = await run(python(code), limit=1)
    elapsed = time.monotonic() - started
    assert result.outcome == "timed_out"
    assert marks.read_text() == "TERM\n"  # asked politely first
    assert 1.5 <= elapsed < 4  # timeout + STOP_GRACE, then SIGKILL
    assert await wait_gone(pids_in(pid_file)[0])


async def test_leftovers_holding_the_output_are_stopped_after_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "PIPE_GRACE", 0.3)
    pids = tmp_path / "pids"
    started = time.monotonic()
    # The shell exits a moment after starting, so its exit is surely awaited, not past.
    result = await run(sh(f"sleep 60 & echo $! > {pids}; echo done; sleep 0.2"), limit=3)
    elapsed = time.monotonic() - started
    assert result == JobResult("succeeded", {"exit_code": 0, "stdout": "done\n", "stderr": ""})
    assert elapsed < 2  # PIPE_GRACE, not the leftover's lifetime
    assert await wait_gone(pids_in(pids)[0])


async def test_cancelling_a_command_stops_its_group_and_propagates(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    job = sh(f"sleep 60 & echo $$ $! > {pids}; sleep 60")
    task = asyncio.create_task(run_command(job, CONTEXT, 30))
    await wait_for_line(pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for pid in pids_in(pids):
        assert await wait_gone(pid)


# --- output ----------------------------------------------------------------------------


async def test_a_flood_of_output_keeps_only_a_bounded_tail() -> None:
    """50 MB on stdout: the result holds its last TAIL_BYTES, memory stays flat."""
    line = "7".rjust(99, "0") + "\n"  # 100 bytes; 50 MB is 500 000 of them
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    result = await run(sh(f"yes '{line[:-1]}' | head -c 50000000"), limit=60)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.outcome == "succeeded"
    stdout = result.result["stdout"]
    assert len(stdout.encode()) <= TAIL_BYTES
    assert stdout == (line * (TAIL_BYTES // len(line) + 1))[-TAIL_BYTES:]
    assert grown_mib < 25


async def test_a_huge_line_without_newline_is_logged_in_bounded_pieces(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="runner.job")
    tracemalloc.start()
    try:
        result = await run(sh("head -c 10000000 /dev/zero | tr '\\0' x"), limit=60)
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert result.outcome == "succeeded"
    assert peak_mib < 8  # never the whole 10 MB line in memory
    assert result.result["stdout"] == "x" * TAIL_BYTES
    pieces = [
        r.getMessage()
        for r in caplog.records
        if r.name == "runner.job" and r.levelno == logging.INFO
    ]
    assert pieces
    assert len(pieces) <= 10_000_000 // LINE_BYTES + 1
    assert all(0 < len(piece) <= LINE_BYTES and set(piece) == {"x"} for piece in pieces)


async def test_a_flood_of_lines_is_logged_in_part_and_the_rest_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="runner.job")
    result = await run(sh("seq 1 200000"), limit=60)
    assert result.outcome == "succeeded"
    records = [r for r in caplog.records if r.name == "runner.job"]
    logged = [r for r in records if r.levelno == logging.INFO]
    (summary,) = [r for r in records if r.levelno == logging.WARNING]
    unlogged = int(summary.getMessage().split()[0])
    assert len(logged) + unlogged == 200_000  # every line is either logged or counted
    assert len(logged) < 20_000  # the event loop is not held up logging them all
    assert logged[0].getMessage() == "1"


async def test_a_flood_is_logged_at_a_bounded_rate_however_much_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """2 million lines (15 MB): a burst of lines, then a steady trickle, lands in the log."""
    caplog.set_level(logging.INFO, logger="runner.job")
    started = time.monotonic()
    result = await run(sh("seq 1 2000000"), limit=120)
    elapsed = time.monotonic() - started
    assert result.outcome == "succeeded"
    logged = [r for r in caplog.records if r.name == "runner.job" and r.levelno == logging.INFO]
    assert len(logged) <= LOG_BURST + LOG_RATE * elapsed + 1
    assert [r.getMessage() for r in logged[:3]] == ["1", "2", "3"]


async def test_output_is_logged_line_by_line_with_event_and_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="runner.job")
    script = "echo hello; printf 'crlf\\r\\n'; echo oops >&2; echo; printf 'no newline'"
    result = await run(sh(script))
    assert result.outcome == "succeeded"
    records = [r for r in caplog.records if r.name == "runner.job"]
    assert all(getattr(r, "event", None) == "nightly-backup" for r in records)
    lines = {
        stream: [r.getMessage() for r in records if getattr(r, "stream", None) == stream]
        for stream in ("stdout", "stderr")
    }
    assert lines == {"stdout": ["hello", "crlf", "", "no newline"], "stderr": ["oops"]}
    assert all(r.levelno == logging.INFO for r in records)


# --- functions -------------------------------------------------------------------------

MODULE = "runner_test_jobs_module"
MODULE_SOURCE = """
import asyncio
import datetime
import pathlib
import sys
import time

seen = []
state = {}


def add(a, b):
    return a + b


async def async_add(a, b):
    await asyncio.sleep(0)
    return a + b


def with_context(x, context):
    seen.append(context)
    return {"x": x, "event": context.event, "attempt": context.attempt}


async def async_with_context(context):
    seen.append(context)
    return context.execution_id


def with_kwargs(**kwargs):
    seen.append(kwargs)
    return sorted(kwargs)


def nothing():
    return None


def odd_values():
    return {
        "when": datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc),
        "pair": (1, 2),
        "path": pathlib.PurePosixPath("/srv/data"),
        "nested": {"ok": True, "none": None, "ratio": 0.5},
    }


def fails():
    raise ValueError("bad input")


async def async_fails():
    raise KeyError("missing")


def exits():
    sys.exit(3)


async def slow():
    try:
        await asyncio.sleep(60)
    finally:
        state["finally"] = True


def slow_sync():
    time.sleep(0.5)
    state["sync_done"] = True
    return "late"


async def raises_timeout():
    raise TimeoutError("upstream took too long")


def sync_raises_timeout():
    raise TimeoutError("upstream took too long")


async def stopped_as_timeout():
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        raise TimeoutError("stopped") from None


async def goes_on_when_stopped():
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        return "went on"


class Namespace:
    @staticmethod
    def nested(a):
        return a * 2


not_callable = 42
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A fresh module of job functions, importable as ``MODULE``; forgotten afterwards."""
    (tmp_path / f"{MODULE}.py").write_text(MODULE_SOURCE)
    (tmp_path / "runner_test_broken_syntax.py").write_text("def job(:\n    pass\n")
    (tmp_path / "runner_test_fails_on_import.py").write_text("raise RuntimeError('no db')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    functions.resolve.cache_clear()
    try:
        yield importlib.import_module(MODULE)
    finally:
        sys.modules.pop(MODULE, None)
        functions.resolve.cache_clear()


# (function, parameters, result)
SUCCESS_CASES = [
    ("add", {"a": 2, "b": 3}, 5),
    ("async_add", {"a": 2, "b": 3}, 5),
    ("Namespace.nested", {"a": 21}, 42),
    ("nothing", {}, None),
    (
        "odd_values",
        {},
        {
            "when": "2027-01-01 00:00:00+00:00",
            "pair": [1, 2],
            "path": "/srv/data",
            "nested": {"ok": True, "none": None, "ratio": 0.5},
        },
    ),
]


@pytest.mark.parametrize(("function", "parameters", "expected"), SUCCESS_CASES)
async def test_function_result_is_stored_as_json(
    module: ModuleType, function: str, parameters: dict[str, Any], expected: Any
) -> None:
    result = await run(FunctionJob(f"{MODULE}:{function}", parameters))
    assert result == JobResult("succeeded", expected)
    assert json.loads(json.dumps(result.result)) == result.result


async def test_a_function_taking_context_receives_it(module: ModuleType) -> None:
    result = await run(FunctionJob(f"{MODULE}:with_context", {"x": 7}))
    assert result == JobResult("succeeded", {"x": 7, "event": "nightly-backup", "attempt": 2})
    assert module.seen == [CONTEXT]


async def test_an_async_function_taking_context_receives_it(module: ModuleType) -> None:
    result = await run(FunctionJob(f"{MODULE}:async_with_context"))
    assert result == JobResult("succeeded", 42)
    assert module.seen == [CONTEXT]


async def test_a_kwargs_function_gets_its_parameters_but_no_context(
    module: ModuleType,
) -> None:
    # **kwargs often forwards its arguments (json.dumps does): only `context` asks for it.
    result = await run(FunctionJob(f"{MODULE}:with_kwargs", {"a": 1, "b": "two"}))
    assert result == JobResult("succeeded", ["a", "b"])
    assert module.seen == [{"a": 1, "b": "two"}]


async def test_a_function_forwarding_kwargs_works() -> None:
    result = await run(FunctionJob("json:dumps", {"obj": {"x": [1]}, "sort_keys": True}))
    assert result == JobResult("succeeded", '{"x": [1]}')


# (function, parameters, error)
FAILURE_CASES = [
    ("fails", {}, "ValueError: bad input"),
    ("async_fails", {}, "KeyError: 'missing'"),
    ("add", {"a": 1}, None),  # a missing parameter: TypeError, message from Python
    ("exits", {}, "SystemExit: 3"),  # sys.exit() in a job must not stop the runner
]


@pytest.mark.parametrize(("function", "parameters", "error"), FAILURE_CASES)
async def test_an_exception_is_a_failed_result(
    module: ModuleType, function: str, parameters: dict[str, Any], error: str | None
) -> None:
    try:
        result = await run(FunctionJob(f"{MODULE}:{function}", parameters))
    except (Exception, SystemExit) as exc:  # an escape becomes a readable failure
        pytest.fail(f"run_job raised {exc!r} instead of returning a failed result")
    assert result.outcome == "failed"
    if error is None:
        assert result.error is not None
        assert result.error.startswith("TypeError: ")
    else:
        assert result.error == error


async def test_async_timeout_cancels_the_coroutine(module: ModuleType) -> None:
    started = time.monotonic()
    result = await run(FunctionJob(f"{MODULE}:slow"), limit=0.2)
    assert time.monotonic() - started < 2
    assert result == JobResult("timed_out", error="timed out after 0.2s")
    assert module.state == {"finally": True}


async def test_runs_due_to_stop_at_once_all_stop_and_leave_no_timer(module: ModuleType) -> None:
    """Runs started together share their timer: each is stopped, and a run that ends in
    time takes its deadline with it."""
    quick = [run(FunctionJob(f"{MODULE}:add", {"a": 1, "b": i}), limit=30) for i in range(50)]
    slow = [run(FunctionJob(f"{MODULE}:slow"), limit=0.2) for _ in range(50)]
    started = time.monotonic()
    results = await asyncio.gather(*quick, *slow)
    assert time.monotonic() - started < 2
    assert [r.outcome for r in results] == ["succeeded"] * 50 + ["timed_out"] * 50
    assert not jobs._Deadline._due.get(asyncio.get_running_loop())  # no timer left waiting


async def test_timeouts_end_runs_as_asyncio_timeout_ends_its_block(module: ModuleType) -> None:
    """A job that turns its timeout's cancellation into a TimeoutError timed out; one that
    swallows it and returns succeeded, and its task is no longer being cancelled."""
    stopped = await run(FunctionJob(f"{MODULE}:stopped_as_timeout"), limit=0.1)
    assert stopped == JobResult("timed_out", error="timed out after 0.1s")
    went_on = await run(FunctionJob(f"{MODULE}:goes_on_when_stopped"), limit=0.1)
    assert went_on == JobResult("succeeded", result="went on")
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_run_stopped_from_outside_is_cancelled_not_timed_out(module: ModuleType) -> None:
    """The runner's own stop (shutdown, overlap: replace) is not the job's timeout."""
    task = asyncio.create_task(run(FunctionJob(f"{MODULE}:slow"), limit=30))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert module.state == {"finally": True}


async def test_sync_timeout_is_recorded_and_its_result_discarded(module: ModuleType) -> None:
    result = await run(FunctionJob(f"{MODULE}:slow_sync"), limit=0.1)
    assert result == JobResult("timed_out", error="timed out after 0.1s")


@pytest.mark.parametrize("function", ["raises_timeout", "sync_raises_timeout"])
async def test_a_job_raising_timeout_error_itself_failed(module: ModuleType, function: str) -> None:
    result = await run(FunctionJob(f"{MODULE}:{function}"), limit=30)
    assert result.outcome == "failed"
    assert result.error is not None
    assert "TimeoutError" in result.error


@pytest.mark.parametrize(
    "reference",
    [
        "runner_test_no_such_module:job",
        f"{MODULE}:missing",
        f"{MODULE}:Namespace.missing",
        f"{MODULE}:not_callable",
        MODULE,
        "runner_test_broken_syntax:job",
        "runner_test_fails_on_import:job",
    ],
)
async def test_an_unloadable_function_is_a_failed_result(
    module: ModuleType, reference: str
) -> None:
    try:
        result = await run(FunctionJob(reference))
    except Exception as exc:
        pytest.fail(f"run_job raised {exc!r} instead of returning a failed result")
    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.startswith(f"cannot load {reference}: ")
