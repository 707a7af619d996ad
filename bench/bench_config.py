"""Config → database at scale: validate, apply and re-apply 10,000 events, whole processes.

Two configs, written to a temporary directory:

* varied -- 10,000 realistic events (cron in several zones, ``every`` with and without a
            start, one-time ``at``, commands and functions, retry and misfire blocks,
            jitter) and 20 cleanup policies over ten files, as a Kubernetes ConfigMap
            would mount them;
* cron   -- the 10,000 cron events of ``bench_idle.py`` in one file (issue 11's case).

For ``--rounds`` rounds, alternating, each a whole process as a user runs it (start-up
and imports included): ``runner validate``, ``runner apply`` on a fresh SQLite file and
``runner apply`` again (the no-op re-apply) of each config; and, beside them, the peer:
APScheduler 3.11 adding the 10,000 cron jobs to its SQLAlchemyJobStore on SQLite (one
round only with ``--peer-once``: it takes minutes). Prints every run, then the medians
(wall and CPU seconds of the child) and the ratio to the peer.

``--in-process`` times the steps inside one process instead (no start-up): validate, open
+ migrate, first apply, no-op apply, plan and apply of 100 changed events, on SQLite and,
with ``--pg URL``, on a scratch PostgreSQL database::

    bash bench/peers/setup.sh && .venv/bin/python bench/bench_config.py
    .venv/bin/python bench/bench_config.py --rounds 5 --no-peer
    .venv/bin/python bench/bench_config.py --in-process --pg postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_config.py --in-process --events 2000 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import resource
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import yaml
from common import (
    APS3,
    PEERS,
    RUNNER,
    machine,
    median,
    run,
    table,
    write_cron_config,
)
from sqlalchemy.engine import make_url

from runner import config as configs
from runner import reconciler
from runner.specs import Config
from runner.store.sql import Store

NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
FILES = 10
CHANGED = 100
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
ENVIRON = {"RUNNER_API_TOKEN": "t" * 32, "BACKUP_DIR": "/backups"}
T = TypeVar("T")


def event(i: int, rng: random.Random) -> dict[str, Any]:
    """The i-th event: one of five realistic shapes, with random details."""
    name = f"job-{i:05d}"
    module = f"team{i % 37}.service{i % 11}"
    shape = i % 5
    if shape == 0:  # nightly command in a zone, with a retry policy
        return {
            "name": name,
            "description": f"Back up shard {i}",
            "module_id": module,
            "command": ["pg_dump", "-f", f"${{BACKUP_DIR}}/shard-{i}.sql"],
            "env": {"PGHOST": f"db-{i % 7}"},
            "schedule": {
                "cron": f"{rng.randrange(60)} {rng.randrange(24)} * * *",
                "timezone": rng.choice(ZONES),
            },
            "timeout": 900,
            "retry": {"attempts": 5, "delay": 60, "backoff": 2, "max_delay": 3600},
            "misfire": {"policy": "coalesce", "grace": 3600},
        }
    if shape == 1:  # frequent function
        return {
            "name": name,
            "module_id": module,
            "function": f"{module}.tasks:refresh",
            "parameters": {"shard": i, "full": i % 2 == 0},
            "schedule": {"every": rng.choice(["30s", "5m", "15m", "1h", {"minutes": 10}])},
            "overlap": "forbid",
            "misfire": {"policy": "skip"},
        }
    if shape == 2:  # one-time
        return {
            "name": name,
            "function": "myapp.notify:send",
            "parameters": {"channel": f"c{i % 13}"},
            "schedule": {"at": f"2027-{rng.randrange(2, 13):02d}-{rng.randrange(1, 29):02d}T10:00"},
            "enabled": i % 10 != 2,
        }
    if shape == 3:  # weekday report, command as a string, cron in a zone
        return {
            "name": name,
            "command": f"report --team {i % 37} --format pdf",
            "schedule": {"cron": "30 6 * * 1-5", "timezone": rng.choice(ZONES)},
            "max_executions": 500,
            "retry": {"attempts": 1, "delay": 30},
        }
    return {  # month-end close, anchored, jittered
        "name": name,
        "command": ["close-books", "--entity", str(i)],
        "schedule": {"every": "1mo", "start": f"2027-01-{rng.randrange(28, 32)}T22:00:00"},
        "jitter": rng.randrange(1, 600),
        "overlap": "replace",
        "misfire": {"policy": "all", "grace": 600},
    }


def write_config(directory: Path, count: int, changed: int = 0) -> None:
    """Write ``count`` events (and a few cleanup policies) over :data:`FILES` files; the
    first ``changed`` events get a new description and timeout."""
    rng = random.Random(20270115)
    events = [event(i, rng) for i in range(count)]
    for spec in events[:changed]:
        spec |= {"description": "changed", "timeout": 42}
    per_file = -(-count // FILES)
    for n in range(FILES):
        document: dict[str, Any] = {"events": events[n * per_file : (n + 1) * per_file]}
        if n == 0:
            document["settings"] = {"timezone": "UTC", "max_concurrent_executions": 20}
            document["cleanup"] = [
                {"name": f"logs-{k}", "directory": f"/srv/app{k}/logs", "max_files": 100}
                for k in range(20)
            ]
        (directory / f"{n:02d}-events.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def load(directory: Path) -> Config:
    return configs.load([directory], ENVIRON, NOW)


#: Wall-clock and CPU seconds (this process, all threads) of one step.
Figure = tuple[float, float]


@contextmanager
def timed(figures: dict[str, Figure], step: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    figures[step] = (time.perf_counter() - wall, time.process_time() - cpu)


async def profiled(work: Callable[[], Awaitable[T]], enabled: bool) -> T:
    if not enabled:
        return await work()
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return await work()
    finally:
        profiler.disable()
        print("\n--- profile of the first apply (top 25 by cumulative time) ---")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


async def bench_database(
    url: str, directory: Path, count: int, profile: bool = False
) -> dict[str, Figure]:
    """Time the database steps on ``url`` (an empty database)."""
    figures: dict[str, Figure] = {}
    write_config(directory, count)
    config = load(directory)
    with timed(figures, "open + migrate"):
        store = await Store.open(url)
    try:
        with timed(figures, f"first apply ({count} events)"):
            first = await profiled(lambda: reconciler.apply(store, config, NOW), profile)
        assert first.count("create") == count + 20, first.summary()
        with timed(figures, "second apply (no-op)"):
            second = await reconciler.apply(store, config, NOW)
        assert second.empty, second.summary()

        write_config(directory, count, CHANGED)
        changed = load(directory)
        with timed(figures, f"plan, {CHANGED} changed"):
            plan = await reconciler.plan(store, changed)
        assert plan.count("update") == CHANGED, plan.summary()
        with timed(figures, f"apply, {CHANGED} changed"):
            await reconciler.apply(store, changed, NOW)
    finally:
        await store.close()
    return figures


async def with_scratch_pg(url: str, work: Callable[[str], Awaitable[T]]) -> T:
    """Run ``work`` on a new database beside the one ``url`` names; drop it afterwards."""
    admin = make_url(url).set(drivername="postgresql")
    name = f"runner_bench_{secrets.token_hex(4)}"
    dsn = admin.render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            return await work(admin.set(database=name).render_as_string(hide_password=False))
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def table_of_steps(columns: dict[str, dict[str, Figure]]) -> str:
    """Wall-clock seconds, and in brackets this process's CPU seconds (the database server's
    own work is not in them): on a busy machine the CPU figure is the steadier one."""
    steps = list(next(iter(columns.values())))
    header = ["step", *(f"{name} wall (cpu)" for name in columns)]
    rows = [
        [step, *(f"{f[step][0]:7.3f} s ({f[step][1]:6.3f})" for f in columns.values())]
        for step in steps
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = zip(row, widths, strict=True)
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells)))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def child(argv: list[str], cwd: Path) -> Figure:
    """Run ``argv`` to completion: wall and CPU seconds (user + system) of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run(argv, cwd, env=ENVIRON)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def runner_round(name: str, config: Path, work: Path) -> dict[str, Figure]:
    """validate, first apply on a fresh SQLite file, and the no-op re-apply of ``config``."""
    database = work / f"{name}.db"
    for stale in work.glob(f"{name}.db*"):
        stale.unlink()
    db = ["--db", f"sqlite:///{database}"]
    return {
        f"runner validate, {name}": child([str(RUNNER), "validate", str(config)], work),
        f"runner apply, {name}": child([str(RUNNER), "apply", "--config", str(config), *db], work),
        f"runner re-apply (no-op), {name}": child(
            [str(RUNNER), "apply", "--config", str(config), *db], work
        ),
    }


def peer_round(count: int, work: Path) -> dict[str, Figure]:
    database = work / "peer.db"
    database.unlink(missing_ok=True)
    argv = [str(APS3), str(PEERS / "aps3_config.py"), str(count), str(database)]
    return {"APScheduler 3.11 add, cron": child(argv, work)}


def whole_processes(args: argparse.Namespace, root: Path) -> None:
    configs_written = {"varied": root / "varied", "cron": root / "cron"}
    for directory in configs_written.values():
        directory.mkdir()
    write_config(configs_written["varied"], args.events)
    write_cron_config(configs_written["cron"], args.events)
    peer = args.peer and APS3.exists()
    print(f"# config of {args.events} events, {args.rounds} rounds; {machine()}", flush=True)
    if args.peer and not peer:
        print(f"# {APS3} is missing (bench/peers/setup.sh): no peer this run")
    figures: dict[str, list[Figure]] = {}
    for round_ in range(args.rounds):
        found: dict[str, Figure] = {}
        for name, directory in configs_written.items():
            found |= runner_round(name, directory, root)
        if peer and (round_ == 0 or not args.peer_once):
            found |= peer_round(args.events, root)
        for step, (wall, cpu) in found.items():
            figures.setdefault(step, []).append((wall, cpu))
            print(f"round {round_ + 1}: {step}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    peer_wall = median([w for w, _ in figures.get("APScheduler 3.11 add, cron", [])])
    rows = []
    for step, values in figures.items():
        wall = median([w for w, _ in values])
        ratio = f"{peer_wall / wall:.1f}x" if "apply, cron" in step and peer else ""
        rows.append([step, f"{wall:.2f}", f"{median([c for _, c in values]):.2f}", ratio])
    print(table(["step", "wall s (median)", "CPU s (median)", "APScheduler 3 / this"], rows))


def in_process(args: argparse.Namespace, tmp: str) -> None:
    directory = Path(tmp) / "config"
    directory.mkdir()
    write_config(directory, args.events)
    validated: dict[str, Figure] = {}
    with timed(validated, "validate (no database)"):
        report = configs.validate([directory], ENVIRON, NOW)
    assert report.config is not None, [p.render() for p in report.errors[:5]]
    print(
        f"{len(report.config.events)} events, {len(report.config.cleanups)} cleanup "
        f"policies in {FILES} files ({sum(p.stat().st_size for p in directory.iterdir()):,}"
        f" bytes); {len(report.warnings)} warnings"
    )
    sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    columns = {
        "sqlite": validated
        | asyncio.run(bench_database(sqlite_url, directory, args.events, args.profile))
    }
    if args.pg:
        pg = asyncio.run(
            with_scratch_pg(args.pg, lambda url: bench_database(url, directory, args.events))
        )
        columns["postgresql"] = validated | pg
    print(table_of_steps(columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000, help="how many (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="whole-process rounds (3)")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="runner only")
    parser.add_argument("--peer-once", action="store_true", help="the peer in round 1 only")
    parser.add_argument("--in-process", action="store_true", help="steps in this process")
    parser.add_argument("--pg", metavar="URL", help="with --in-process: PostgreSQL too")
    parser.add_argument("--profile", action="store_true", help="cProfile the first apply")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        if args.in_process:
            in_process(args, tmp)
        else:
            whole_processes(args, Path(tmp))


if __name__ == "__main__":
    main()
