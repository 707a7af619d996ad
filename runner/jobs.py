"""Run one job: a Python function or a command, under a timeout.

A job's failure is a result, never an exception: :func:`run_job` returns a
:class:`JobResult` whose ``outcome`` is ``succeeded``, ``failed`` or ``timed_out``. Only
cancellation (shutdown, ``overlap: replace``) propagates, after a command's whole process
group has been stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import math
import os
import signal
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runner import orphans
from runner.functions import Functions
from runner.results import JobResult
from runner.specs import CommandJob, EventSpec, FunctionJob

log = logging.getLogger("runner.job")

TAIL_BYTES = 8192  # of stdout and of stderr, kept in the execution's result
LINE_BYTES = 4096  # longest line logged as one; a longer one is cut
LOG_RATE = 100.0  # lines per second of each stream logged at length, after...
LOG_BURST = 1000  # ...a burst of this many; the rest are counted
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
PIPE_GRACE = 2.0  # seconds a command's leftovers may hold its output open after it exits

OnSpawn = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class JobContext:
    """What a job may ask about its run (a function's optional ``context`` argument)."""

    event: str
    execution_id: int
    scheduled_time: datetime
    attempt: int
    # The run's ``trace_session_id``: in its execution record, its log lines, RUNNER_TRACE_ID.
    trace_session_id: str = ""


async def run_job(
    spec: EventSpec,
    context: JobContext,
    functions: Functions | None = None,
    on_spawn: OnSpawn | None = None,
) -> JobResult:
    """Run ``spec``'s job once, stopping it after ``spec.timeout`` seconds. A function is
    looked up in ``functions`` (default: import paths only); ``on_spawn`` is awaited with
    a command's process group id as soon as it runs."""
    if isinstance(spec.job, FunctionJob):
        function_names = functions or Functions()
        return await run_function(spec.job, context, spec.timeout, function_names)
    return await run_command(spec.job, context, spec.timeout, on_spawn)


# --- functions --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _takes_context(function: Callable[..., Any]) -> bool:
    """Only a parameter named ``context`` asks for it: ``**kwargs`` often passes its
    arguments on (``json.dumps`` does), where a stray ``context`` would break the call."""
    try:
        return "context" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


async def run_function(
    job: FunctionJob,
    context: JobContext,
    time_limit: float | None,
    functions: Functions,
) -> JobResult:
    """Await an async function (cancelled at the timeout) or run a sync one in a thread
    of its own.

    A sync function cannot be stopped: at the timeout its run is recorded as timed out
    and its thread is left to finish, its result discarded.
    """
    try:
        function = functions.lookup(job.function)
    except Exception as exc:  # also a SyntaxError, or whatever the module raises on import
        return JobResult("failed", error=f"cannot load {job.function}: {exc}")
    kwargs = dict(job.parameters)
    if _takes_context(function):
        kwargs["context"] = context
    deadline = None if time_limit is None else _Deadline.start(time_limit)
    try:
        value = await _call(function, kwargs)
    except BaseException as exc:
        if deadline is not None and deadline.leave(exc):
            return JobResult("timed_out", error=f"timed out after {time_limit:g}s")
        if isinstance(exc, TimeoutError):
            return JobResult("failed", error="TimeoutError raised by the job")
        if isinstance(exc, Exception | SystemExit):  # sys.exit() must not stop the runner
            return JobResult("failed", error=f"{type(exc).__name__}: {exc}")
        raise  # cancelled from outside: the runner stops or replaces the run
    if deadline is not None:
        deadline.leave(None)
    return JobResult("succeeded", result=_jsonable(value))


class _Deadline:
    """``asyncio.timeout`` for the task of a run, on a timer it shares with the runs due
    to stop in the same millisecond: a burst starts hundreds of runs a millisecond, and a
    timer each (made, pushed on the loop's heap, cancelled) was a twentieth of a run's
    cost. A run is stopped within a millisecond after its time."""

    # Per event loop: the runs to stop by the millisecond they are due, with its timer.
    _due: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[int, tuple[asyncio.TimerHandle, set[_Deadline]]]
    ] = weakref.WeakKeyDictionary()

    def __init__(
        self,
        task: asyncio.Task[Any],
        due: dict[int, tuple[asyncio.TimerHandle, set[_Deadline]]],
        key: int,
    ) -> None:
        self.task = task
        self.due = due  # the loop's runs to stop, by the millisecond
        self.key = key
        self.cancelling = task.cancelling()  # cancellations asked for before this one
        self.expired = False

    @classmethod
    def start(cls, seconds: float) -> _Deadline:
        """A deadline ``seconds`` from now for the current task."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        key = math.ceil((loop.time() + seconds) * 1000)
        due = cls._due.setdefault(loop, {})
        deadline = cls(task, due, key)
        if key in due:
            due[key][1].add(deadline)
        else:
            due[key] = (loop.call_at(key / 1000, cls._expire, due, key), {deadline})
        return deadline

    @staticmethod
    def _expire(due: dict[int, tuple[asyncio.TimerHandle, set[_Deadline]]], key: int) -> None:
        for deadline in due.pop(key)[1]:
            deadline.expired = True
            deadline.task.cancel()

    def leave(self, raised: BaseException | None) -> bool:
        """The run ended, having raised ``raised`` (None: it returned); as
        ``asyncio.timeout`` leaves its block, whether it timed out: the deadline came and
        the run ended with its cancellation (no other asked for meanwhile) or with a
        TimeoutError."""
        self._forget()
        if not self.expired:
            return False
        alone = self.task.uncancel() <= self.cancelling
        return isinstance(raised, TimeoutError) or (
            alone and isinstance(raised, asyncio.CancelledError)
        )

    def _forget(self) -> None:
        entry = self.due.get(self.key)
        if entry is not None:  # else it expired: its timer has run
            handle, deadlines = entry
            deadlines.discard(self)
            if not deadlines:
                handle.cancel()
                del self.due[self.key]


async def _call(function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    if inspect.iscoroutinefunction(function):
        return await function(**kwargs)
    value = await in_thread(functools.partial(function, **kwargs))
    return await value if inspect.isawaitable(value) else value


def in_thread(call: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run ``call`` in a new daemon thread; the future gets its result or exception.

    Not a pool: a pool's threads are few and reused, so a function that never returns
    would hold one for good, and later jobs would queue behind it past their timeout. A
    thread per call holds nothing once its run has timed out, and, being a daemon, does
    not keep the process from exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # cancelled at the timeout: nobody waits for it any more
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        try:
            value, error = call(), None
        except BaseException as exc:  # handed to the awaiting job, as a pool would
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: the runner is gone
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="runner-job", daemon=True).start()
    return future


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data; what JSON cannot hold becomes its ``str``."""
    if value is None or type(value) in (str, int, bool):  # most results: nothing to convert
        return value
    return json.loads(json.dumps(value, default=str))


# --- commands ---------------------------------------------------------------------------


async def run_command(
    job: CommandJob,
    context: JobContext,
    time_limit: float | None,
    on_spawn: OnSpawn | None = None,
) -> JobResult:
    """Run ``job`` in a process group of its own; at the timeout, stop the whole group.

    Output is logged line by line as it comes, and its tail is kept in the result, so a
    job that prints without end uses bounded memory. The group's leader is killed if the
    runner dies (see :mod:`runner.orphans`).
    """
    argv = ["/bin/sh", "-c", job.argv[0]] if job.shell else list(job.argv)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=job.cwd,
            env=_environment(job, context),
            start_new_session=True,
            preexec_fn=orphans.die_with_parent if orphans.supported() else None,
        )
    except OSError as exc:
        return JobResult("failed", error=f"cannot start {argv[0]}: {exc.strerror or exc}")
    process = asyncio.subprocess.Process(transport, protocol, loop)
    try:
        return await _supervise(process, protocol.exited, context, time_limit, on_spawn)
    finally:
        transport.close()  # the pipes, even if something outside the group still holds them


async def _supervise(
    process: asyncio.subprocess.Process,
    exited: asyncio.Future[None],
    context: JobContext,
    time_limit: float | None,
    on_spawn: OnSpawn | None,
) -> JobResult:
    tails = {"stdout": _Tail(), "stderr": _Tail()}
    assert process.stdout is not None
    assert process.stderr is not None
    pumps = [
        asyncio.create_task(_pump(process.stdout, tails["stdout"], context, "stdout")),
        asyncio.create_task(_pump(process.stderr, tails["stderr"], context, "stderr")),
    ]
    try:
        async with asyncio.timeout(time_limit):
            if on_spawn is not None:
                await on_spawn(process.pid)
            # Not process.wait(): it also waits for the pipes, which leftovers may hold.
            await asyncio.shield(exited)
            code = process.returncode
            assert code is not None
            await _drain(process, exited, pumps)
    except TimeoutError:
        await _stop_group(process, exited, pumps)
        output = {k: t.text() for k, t in tails.items()}
        return JobResult(
            "timed_out", output, f"timed out after {time_limit:g}s; process group stopped"
        )
    except asyncio.CancelledError:
        await asyncio.shield(_stop_group(process, exited, pumps))
        raise
    result = {"exit_code": code, **{k: t.text() for k, t in tails.items()}}
    return JobResult("succeeded" if code == 0 else "failed", result, _exit_error(code))


def _environment(job: CommandJob, context: JobContext) -> dict[str, str]:
    return {
        **os.environ,
        **job.env,
        "RUNNER_EVENT": context.event,
        "RUNNER_EXECUTION_ID": str(context.execution_id),
        "RUNNER_SCHEDULED_TIME": context.scheduled_time.isoformat(),
        "RUNNER_ATTEMPT": str(context.attempt),
        "RUNNER_TRACE_ID": context.trace_session_id,
    }


def _exit_error(code: int) -> str | None:
    if code == 0:
        return None
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


async def _drain(
    process: asyncio.subprocess.Process,
    exited: asyncio.Future[None],
    pumps: list[asyncio.Task[None]],
) -> None:
    """Wait for the output to end; processes left behind holding it open are stopped."""
    _, pending = await asyncio.wait(pumps, timeout=PIPE_GRACE)
    if pending:
        log.warning("command exited but left processes holding its output; stopping them")
        await _stop_group(process, exited, pumps)


async def _stop_group(
    process: asyncio.subprocess.Process,
    exited: asyncio.Future[None],
    pumps: list[asyncio.Task[None]],
) -> None:
    """SIGTERM the job's process group, SIGKILL what is left after :data:`STOP_GRACE`."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(exited), STOP_GRACE)
    _signal_group(process.pid, signal.SIGKILL)
    await asyncio.shield(exited)
    await asyncio.wait(pumps, timeout=PIPE_GRACE)
    for pump in pumps:
        pump.cancel()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The streams of a subprocess, and a future set as soon as the process itself exits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


class _Tail:
    """The last :data:`TAIL_BYTES` of a stream."""

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def add(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        while self.size - len(self.chunks[0]) >= TAIL_BYTES:
            self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        return b"".join(self.chunks)[-TAIL_BYTES:].decode("utf-8", "replace")


async def _pump(stream: asyncio.StreamReader, tail: _Tail, context: JobContext, name: str) -> None:
    """Log ``stream`` line by line and keep its tail; memory stays bounded.

    At most :data:`LOG_BURST` lines, then :data:`LOG_RATE` a second, are logged, so a job
    that floods its output fills neither the log nor the event loop's time; the rest are
    counted and said.
    """
    partial, unlogged = b"", 0
    budget = _Budget(asyncio.get_running_loop().time)
    while chunk := await stream.read(65536):
        tail.add(chunk)
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        if len(partial) > LINE_BYTES:
            lines.append(partial)
            partial = b""
        allowed = budget.take(len(lines))
        for line in lines[:allowed]:
            _log_line(line, context, name)
        unlogged += len(lines) - allowed
    if partial:
        _log_line(partial, context, name)
    if unlogged:
        extra = {**log_fields(context), "stream": name}
        log.warning(
            "%d lines of %s were not logged (too many, too fast)", unlogged, name, extra=extra
        )


class _Budget:
    """A token bucket of log lines: :data:`LOG_BURST` at once, :data:`LOG_RATE` a second."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self.monotonic = monotonic
        self.tokens = float(LOG_BURST)
        self.since = monotonic()

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` lines may be logged now."""
        now = self.monotonic()
        self.tokens = min(float(LOG_BURST), self.tokens + (now - self.since) * LOG_RATE)
        self.since = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


def _log_line(line: bytes, context: JobContext, stream: str) -> None:
    text = line[:LINE_BYTES].decode("utf-8", "replace").rstrip("\r")
    log.info(text, extra={**log_fields(context), "stream": stream})


def log_fields(context: JobContext) -> dict[str, Any]:
    """What every log line about a run carries, so one run's lines can be found together."""
    return {
        "event": context.event,
        "execution_id": context.execution_id,
        "trace_session_id": context.trace_session_id,
    }
