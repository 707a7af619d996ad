"""Execution at scale: how late `runner run` starts jobs, and what an idle runner costs.

Drives the real command (``.venv/bin/runner run``) as a subprocess on a fresh SQLite file in
a temporary directory, watches its database read-only with the stdlib ``sqlite3`` module,
and prints figures next to a peer that shows the floor of this machine. Nothing is
asserted: the figures are for reading.

1. Lateness of 1,000 one-time events (``schedule: {at: ...}``, written with assorted UTC
   offsets), about 50 a second over 20 s starting 8 s after launch, several per instant:
   once as an async no-op function, once as the command ``["true"]``. Lateness is
   ``start_time - scheduled_time`` from ``scheduler_executions``; also shown are the time
   the "run started" log line was written (after the claim's database writes; the log has
   millisecond resolution and truncates) and ``end_time``, by which the job had surely
   run. The floor: a plain asyncio program that fires the same pattern of instants with
   ``loop.call_at``.
2. Idle cost with 10,000 events due far in the future (daily 03:00 crons in several zones,
   ``every: 1w``): time from launch until every row is in the database, then CPU time
   (utime + stime of ``/proc/PID/stat``), context switches and RSS over 30 s of idling,
   for ``check_interval`` 1.0 and 10. The floor: ``python -c "import time; time.sleep(..)"``.

Usage::

    .venv/bin/python bench/bench_runner.py
    .venv/bin/python bench/bench_runner.py --quick
    .venv/bin/python bench/bench_runner.py --jobs 2000 --events 50000 --idle-seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Literal
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
RUNNER = VENV_BIN / "runner"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)

JOBS_PER_SECOND = 50
SLOT_SECONDS = 0.1  # one instant per slot, placed at random in its first half
GROUP_SIZES = (1, 2, 5, 10, 7)  # jobs sharing one instant, in turn: 5 on average
OFFSETS = (  # the same instant is written in several UTC offsets
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=12, minutes=45)),
)
IDLE_ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "America/Sao_Paulo",
)
FAR_ENOUGH = timedelta(hours=2)  # a zone whose 03:00 (or Monday 00:00) is nearer is left out
SETTLE_SECONDS = 3.0
FINISH_MARGIN = 120.0  # s after the last instant before giving up on the executions
POLL_SECONDS = 0.25
STOP_WAIT = 30.0  # s to wait for a SIGTERM'd runner (its shutdown_grace defaults to 20)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

JobKind = Literal["function", "command"]
BENCH_JOBS = "async def noop():\n    return None\n"


# --- processes ----------------------------------------------------------------------------


def runner_environment() -> dict[str, str]:
    """This environment without the runner's own variables (and never the PID-1 fork)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}


@contextlib.contextmanager
def spawned(argv: Sequence[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, its output in ``log``; whatever happens, it is gone afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=runner_environment(),
            start_new_session=True,  # a ^C at the terminal reaches only us; we stop it
        )
    try:
        yield process
    finally:
        try:
            if process.poll() is None:
                stop(process)
        finally:  # a second ^C during the polite stop: no mercy
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def stop(process: subprocess.Popen[bytes], wait: float = STOP_WAIT) -> int:
    """SIGTERM, then SIGKILL after ``wait`` seconds; returns the exit status."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(wait)
    except subprocess.TimeoutExpired:
        print(f"  ! pid {process.pid} ignored SIGTERM for {wait:g}s: killed", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


@dataclass(frozen=True)
class ProcSample:
    """What /proc says about a process at one moment."""

    at: float  # time.monotonic()
    cpu_seconds: float  # utime + stime, every thread
    context_switches: int  # voluntary + involuntary, summed over live threads
    threads: int
    rss_kib: int
    hwm_kib: int


def proc_sample(pid: int) -> ProcSample:
    at = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3, "state"
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            switches += sum(_status(task / "status", "ctxt_switches").values())
    status = _status(Path(f"/proc/{pid}/status"), "")
    return ProcSample(
        at, cpu, switches, status["Threads"], status.get("VmRSS", 0), status.get("VmHWM", 0)
    )


def _status(path: Path, suffix: str) -> dict[str, int]:
    """The integer fields of a /proc status file whose names end with ``suffix``."""
    values: dict[str, int] = {}
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(":")
        words = rest.split()
        if name.endswith(suffix) and words and words[0].isdigit():
            values[name] = int(words[0])
    return values


# --- the database, read-only ----------------------------------------------------------------


def count(db: Path, query: str) -> int:
    """One integer from the runner's database; 0 while it (or its schema) does not exist."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA busy_timeout = 2000")
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


EVENTS = "SELECT count(*) FROM scheduler_events"
FINISHED = "SELECT count(*) FROM scheduler_executions WHERE end_time IS NOT NULL"


@dataclass(frozen=True)
class Execution:
    id: int
    scheduled: datetime
    started: datetime | None
    finished: datetime | None
    outcome: str


def executions(db: Path) -> list[Execution]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT id, scheduled_time, start_time, end_time, outcome"
            " FROM scheduler_executions ORDER BY id"
        ).fetchall()
    return [Execution(r[0], stamp(r[1]), maybe(r[2]), maybe(r[3]), r[4]) for r in rows]


def stamp(text: str) -> datetime:
    """A stored time: naive UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def maybe(text: str | None) -> datetime | None:
    return None if text is None else stamp(text)


def wait_until(
    db: Path, query: str, target: int, deadline: float, process: subprocess.Popen[bytes]
) -> float | None:
    """Poll until ``query`` reaches ``target``; the monotonic time it did, None on timeout."""
    while time.monotonic() < deadline:
        if count(db, query) >= target:
            return time.monotonic()
        if process.poll() is not None:
            raise RuntimeError(f"the runner exited early with status {process.returncode}")
        time.sleep(POLL_SECONDS)
    return None


# --- statistics and tables ------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating between closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned first column, right-aligned numbers."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join(["  " + line(r) for r in [header, *rows]])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def lateness_row(label: str, lateness: Sequence[float], expected: int) -> list[str]:
    if not lateness:
        return [label, f"0/{expected}", "-", "-", "-", "-", "-"]
    return [
        label,
        str(len(lateness)) if len(lateness) == expected else f"{len(lateness)}/{expected}",
        ms(min(lateness)),
        ms(percentile(lateness, 50)),
        ms(percentile(lateness, 90)),
        ms(percentile(lateness, 99)),
        ms(max(lateness)),
    ]


# --- 1. lateness ----------------------------------------------------------------------------


def instant_pattern(jobs: int, rng: random.Random) -> list[int]:
    """Each job's instant, in microseconds after the first slot: ``JOBS_PER_SECOND`` a second
    on average, in groups sharing one instant."""
    offsets: list[int] = []
    slot = 0
    while len(offsets) < jobs:
        size = min(GROUP_SIZES[slot % len(GROUP_SIZES)], jobs - len(offsets))
        micros = round(slot * SLOT_SECONDS * 1e6) + rng.randrange(round(SLOT_SECONDS * 5e5))
        offsets.extend([micros] * size)
        slot += 1
    # Stretch the slots so the rate is JOBS_PER_SECOND whatever the group sizes average.
    mean_group = sum(GROUP_SIZES) / len(GROUP_SIZES)
    scale = mean_group / (JOBS_PER_SECOND * SLOT_SECONDS)
    return [round(o * scale) for o in offsets]


def lateness_config(kind: JobKind, instants: Sequence[datetime]) -> str:
    lines = [
        "settings:",
        "  timezone: UTC",
        "  database: sqlite:///runner.db",
        "  max_concurrent_executions: 100",
        "events:",
    ]
    job = "function: benchjobs:noop" if kind == "function" else 'command: ["true"]'
    for i, instant in enumerate(instants):
        written = instant.astimezone(OFFSETS[i % len(OFFSETS)]).isoformat()
        lines += [f"  - name: late-{i:05d}", f"    {job}", f'    schedule: {{at: "{written}"}}']
    return "\n".join(lines) + "\n"


@dataclass
class LatenessRun:
    label: str
    expected: int
    started: list[float] = field(default_factory=list)  # s after the scheduled time
    logged: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def floor_lateness(offsets: Sequence[int], lead: float, workdir: Path) -> LatenessRun:
    """The same instants fired by a bare asyncio loop in a fresh interpreter."""
    run = LatenessRun("asyncio loop.call_at (floor)", len(offsets))
    plan = workdir / "floor.json"
    start = time.time() + lead
    plan.write_text(json.dumps({"start": start, "offsets_us": list(offsets)}))
    argv = [str(PYTHON), str(Path(__file__).resolve()), "--floor-child", str(plan)]
    timeout = lead + offsets[-1] / 1e6 + 60
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    run.started = [float(x) for x in json.loads(done.stdout)]
    run.outcomes["fired"] = len(run.started)
    run.notes.append(f"at the end: {load_note()}")
    return run


def floor_child(plan_path: str) -> None:
    """``--floor-child PLAN``: fire every instant of PLAN; print each lateness (s) as JSON."""
    plan = json.loads(Path(plan_path).read_text())
    targets = [plan["start"] + us / 1e6 for us in plan["offsets_us"]]
    print(json.dumps(asyncio.run(_fire_all(targets))))


async def _fire_all(targets: Sequence[float]) -> list[float]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    late: list[float] = []

    def fire(target: float) -> None:
        late.append(time.time() - target)
        if len(late) == len(targets):
            done.set_result(None)

    wall, mono = time.time(), loop.time()
    for target in targets:
        loop.call_at(mono + (target - wall), fire, target)
    await done
    return late


def runner_lateness(
    kind: JobKind, offsets: Sequence[int], lead: float, workdir: Path
) -> LatenessRun:
    """Run the runner on ``offsets`` as one-time events of ``kind``; collect lateness."""
    label = "async noop" if kind == "function" else 'command ["true"]'
    run = LatenessRun(f"runner, {label}", len(offsets))
    home = workdir / f"lateness-{kind}"
    home.mkdir()
    (home / "benchjobs.py").write_text(BENCH_JOBS)
    db, log = home / "runner.db", home / "runner.log"
    launched, launched_wall = time.monotonic(), time.time()
    first = datetime.fromtimestamp(launched_wall + lead, UTC)
    instants = [first + timedelta(microseconds=us) for us in offsets]
    config = home / "scheduler.yaml"
    config.write_text(lateness_config(kind, instants))
    argv = [str(RUNNER), "run", "--config", str(config), "--log-format", "json"]
    with spawned(argv, home, log) as process:
        applied = wait_until(db, EVENTS, len(offsets), launched + lead + 60, process)
        if applied is None:
            run.notes.append("config not applied within the lead time + 60 s")
            return run
        at_start = proc_sample(process.pid)
        startup = applied - launched
        run.notes.append(f"launch -> {len(offsets)} rows in the database: {startup:.2f} s")
        if startup > lead:
            run.notes.append(f"! rows appeared after the first instant (+{lead:g} s)")
        last = launched + lead + offsets[-1] / 1e6
        if wait_until(db, FINISHED, len(offsets), last + FINISH_MARGIN, process) is None:
            run.notes.append(f"! not all executions finished {FINISH_MARGIN:g} s after the last")
        else:
            after = time.monotonic() - last
            run.notes.append(
                f"all finished (seen by a {POLL_SECONDS:g} s poll) {after:.2f} s "
                "after the last instant"
            )
        sample = proc_sample(process.pid)
        run.notes.append(f"at the end: {load_note()}")
        busy = sample.cpu_seconds - at_start.cpu_seconds
        run.notes.append(
            f"runner CPU: {at_start.cpu_seconds:.2f} s until the rows were in, then "
            f"{busy:.2f} s ({busy / len(offsets) * 1000:.1f} ms a job); "
            f"peak RSS {sample.hwm_kib / 1024:.0f} MiB; threads {sample.threads}"
        )
        stopping = time.monotonic()
        status = stop(process)
        run.notes.append(f"SIGTERM -> exit {status} in {time.monotonic() - stopping:.2f} s")
    collect(run, executions(db), instants, log)
    return run


def collect(
    run: LatenessRun, rows: Sequence[Execution], instants: Sequence[datetime], log: Path
) -> None:
    """Fill ``run`` from the execution records and the log; note anything unexpected."""
    logged = launch_log_times(log, run.notes)
    for row in rows:
        run.outcomes[row.outcome] += 1
        if row.started is not None:
            run.started.append((row.started - row.scheduled).total_seconds())
        if row.finished is not None and row.outcome == "succeeded":
            run.finished.append((row.finished - row.scheduled).total_seconds())
        if row.id in logged:
            run.logged.append((logged[row.id] - row.scheduled).total_seconds())
    wanted, got = Counter(instants), Counter(row.scheduled for row in rows)
    if wanted != got:
        missing, extra = wanted - got, got - wanted
        run.notes.append(
            f"! scheduled_time differs from the config: {sum(missing.values())} instants "
            f"missing, {sum(extra.values())} unexpected (e.g. {sorted(extra)[:2]})"
        )
    negative = [x for x in run.started if x < 0]
    if negative:
        run.notes.append(f"! {len(negative)} runs started before their time ({min(negative)} s)")


def launch_log_times(log: Path, notes: list[str]) -> dict[int, datetime]:
    """execution id -> time of its "run started" log line; notes warnings and errors."""
    times: dict[int, datetime] = {}
    levels: Counter[str] = Counter()
    unparsed = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            unparsed += 1
            continue
        levels[entry.get("level", "?")] += 1
        if entry.get("message") == "run started" and "execution_id" in entry:
            times[int(entry["execution_id"])] = datetime.fromisoformat(entry["time"])
    bad = {k: v for k, v in levels.items() if k not in ("info", "debug")}
    if bad or unparsed:
        notes.append(f"! log: {bad} entries above info, {unparsed} lines that are not JSON")
    return times


# --- 2. idle cost ---------------------------------------------------------------------------


def far_zones(now: datetime) -> tuple[list[str], list[str]]:
    """Zones whose next local 03:00, and next local Monday 00:00, are ``FAR_ENOUGH`` away."""
    daily, weekly = [], []
    for name in IDLE_ZONES:
        local = now.astimezone(ZoneInfo(name))
        three = local.replace(hour=3, minute=0, second=0, microsecond=0)
        if three <= local:
            three += timedelta(days=1)
        monday = (local - timedelta(days=local.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        ) + timedelta(days=7)
        if three - local > FAR_ENOUGH:
            daily.append(name)
        if monday - local > FAR_ENOUGH:
            weekly.append(name)
    return daily, weekly


def idle_config(events: int, check_interval: float, now: datetime) -> str:
    daily, weekly = far_zones(now)
    lines = [
        "settings:",
        "  timezone: UTC",
        "  database: sqlite:///runner.db",
        f"  check_interval: {check_interval}",
        "events:",
    ]
    for i in range(events):
        lines.append(f"  - name: idle-{i:05d}")
        lines.append("    function: benchjobs:noop" if i % 3 else '    command: ["true"]')
        if i % 2 == 0 or not weekly:
            schedule = f'{{cron: "0 3 * * *", timezone: {daily[i % len(daily)]}}}'
        else:
            schedule = f"{{every: 1w, timezone: {weekly[i % len(weekly)]}}}"
        lines.append(f"    schedule: {schedule}")
    return "\n".join(lines) + "\n"


@dataclass
class IdleRun:
    label: str
    startup: float | None = None  # s from launch to every row in the database
    cpu: float = 0.0  # CPU seconds over the window
    window: float = 0.0  # s
    switches: int = 0
    threads: int = 0
    rss_kib: int = 0
    notes: list[str] = field(default_factory=list)


def measure_idle(run: IdleRun, pid: int, seconds: float) -> None:
    before = proc_sample(pid)
    time.sleep(seconds)
    after = proc_sample(pid)
    run.cpu = after.cpu_seconds - before.cpu_seconds
    run.window = after.at - before.at
    run.switches = after.context_switches - before.context_switches
    run.threads, run.rss_kib = after.threads, after.rss_kib
    run.notes.append(f"window ended at {load_note()}")


def runner_idle(events: int, check_interval: float, seconds: float, workdir: Path) -> IdleRun:
    run = IdleRun(f"runner, {events} events, check_interval {check_interval:g}")
    home = workdir / f"idle-{check_interval:g}"
    home.mkdir()
    (home / "benchjobs.py").write_text(BENCH_JOBS)
    config = home / "scheduler.yaml"
    config.write_text(idle_config(events, check_interval, datetime.now(UTC)))
    db = home / "runner.db"
    argv = [str(RUNNER), "run", "--config", str(config), "--log-format", "json"]
    launched = time.monotonic()
    with spawned(argv, home, home / "runner.log") as process:
        applied = wait_until(db, EVENTS, events, launched + 600, process)
        if applied is None:
            run.notes.append("! config not applied within 600 s")
            return run
        run.startup = applied - launched
        time.sleep(SETTLE_SECONDS)
        measure_idle(run, process.pid, seconds)
        ran = count(db, "SELECT count(*) FROM scheduler_executions")
        if ran:
            run.notes.append(f"! {ran} executions while idle")
        stopping = time.monotonic()
        status = stop(process)
        run.notes.append(f"SIGTERM -> exit {status} in {time.monotonic() - stopping:.2f} s")
    launch_log_times(home / "runner.log", run.notes)
    return run


def sleeper_idle(seconds: float, workdir: Path) -> IdleRun:
    run = IdleRun("python time.sleep (floor)")
    nap = max(60.0, seconds + SETTLE_SECONDS + 15)
    argv = [str(PYTHON), "-c", f"import time; time.sleep({nap:g})"]
    with spawned(argv, workdir, workdir / "sleeper.log") as process:
        time.sleep(SETTLE_SECONDS)
        measure_idle(run, process.pid, seconds)
    return run


def idle_row(run: IdleRun) -> list[str]:
    share = run.cpu / run.window if run.window else 0.0
    return [
        run.label,
        "-" if run.startup is None else f"{run.startup:.2f}",
        f"{share * 100:.2f}",
        f"{share * 60:.3f}",
        f"{run.switches / run.window:.1f}" if run.window else "-",
        str(run.threads),
        f"{run.rss_kib / 1024:.0f}",
    ]


# --- what was measured -----------------------------------------------------------------------


def code_state() -> str:
    """The runner code under test: git HEAD, files changed under runner/, a content hash.

    Other people may be editing runner/ while the bench runs; comparing this before and
    after tells whether the figures mix versions."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "runner").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    head, changed = "?", "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--", "runner"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        changed = str(len(status.splitlines()))
    return f"HEAD {head}, {changed} files changed under runner/, content {digest.hexdigest()[:12]}"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} CPUs"


# --- main -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="one-time events (default 1000)")
    parser.add_argument("--events", type=int, default=10000, help="idle events (default 10000)")
    parser.add_argument(
        "--idle-seconds", type=float, default=30.0, help="idle window in s (default 30)"
    )
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the instant pattern")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--floor-child", metavar="PLAN", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.events, args.idle_seconds = 100, 1000, 5.0
    if args.jobs < 1 or args.events < 1 or args.idle_seconds <= 0:
        parser.error("--jobs, --events and --idle-seconds must be positive")
    args.lead = 5.0 if args.quick else 8.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor_child:
        floor_child(args.floor_child)
        return 0

    def terminated(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally blocks below

    signal.signal(signal.SIGTERM, terminated)
    workdir = Path(tempfile.mkdtemp(prefix="bench_runner."))
    try:
        bench(args, workdir)
    finally:
        if args.keep:
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def bench(args: argparse.Namespace, workdir: Path) -> None:
    code = code_state()
    print(f"runner bench: {RUNNER}, python {sys.version.split()[0]}")
    print(f"runner code: {code}")
    print(f"machine: {load_note()}")

    offsets = instant_pattern(args.jobs, random.Random(args.seed))
    span, instants = offsets[-1] / 1e6, len(set(offsets))
    print(
        f"\n1. Lateness: {args.jobs} one-time events at {instants} distinct instants over "
        f"{span:.1f} s, from {args.lead:g} s after launch; max_concurrent_executions 100"
    )
    runs = [floor_lateness(offsets, 2.0, workdir)]
    for kind in ("function", "command"):
        runs.append(runner_lateness(kind, offsets, args.lead, workdir))
    rows: list[list[str]] = []
    for run in runs:
        if run.logged or run.finished:
            rows.append(lateness_row(f"{run.label}: start_time", run.started, run.expected))
            rows.append(lateness_row("  'run started' logged", run.logged, run.expected))
            rows.append(lateness_row("  end_time", run.finished, run.expected))
        else:
            rows.append(lateness_row(run.label, run.started, run.expected))
    header = ["lateness (ms)", "n", "min", "p50", "p90", "p99", "max"]
    print(table(header, rows))
    for run in runs:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(run.outcomes.items()))
        print(f"  {run.label}: {outcomes}")
        for note in run.notes:
            print(f"    {note}")

    print(
        f"\n2. Idle: {args.events} events due far in the future, measured over "
        f"{args.idle_seconds:g} s after the config is applied and {SETTLE_SECONDS:g} s settle"
    )
    idle = [sleeper_idle(args.idle_seconds, workdir)]
    for interval in (1.0, 10.0):
        idle.append(runner_idle(args.events, interval, args.idle_seconds, workdir))
    header = ["process", "startup s", "CPU %", "CPU s/min", "ctx sw/s", "threads", "RSS MiB"]
    print(table(header, [idle_row(peer) for peer in idle]))
    for peer in idle:
        for note in peer.notes:
            print(f"  {peer.label}: {note}")
    print("  startup s: launch until every event row is in the database (the config applied)")
    print(f"\nmachine at the end: {load_note()}")
    if code_state() != code:
        print(
            f"! runner/ changed while the bench ran ({code} -> {code_state()}): "
            "the figures may mix versions"
        )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the finally blocks have stopped the runners already
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
