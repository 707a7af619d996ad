"""The housekeeper against ``find -delete`` on a large tree: same files, same run.

Builds a tree of 100,000 files (by default) in about 100 subdirectories, with mixed ages
set through ``os.utime``, in a temporary directory; then, for several rounds, runs each
contender on a fresh copy (``cp -a``) of it, alternating which goes first:

* runner, dry run    -- ``clean()`` with ``dry_run=True`` (scans and plans, deletes nothing; once)
* runner             -- ``clean()`` on ``retention_days: N, recursive: true``
* runner cleanup     -- the same policy as a whole process: ``python -m runner cleanup``
                        with a config file and an SQLite database beside the tree (made
                        before the rounds), imports and the stored report included
* find -delete       -- ``find DIR -type f -mtime +N -delete``

prints each round, the medians and their ratios, and checks that all deleted exactly the
same set of files in every round (and that the dry run named the same number). The load
average is printed beside the figures: on a shared machine they are upper bounds.

``find -mtime +N`` means "at least N+1 whole days old" while the policy means "older than
N days", so no file is given an age between N and N+1 days (plus a margin):
on every other file the two rules agree.

    .venv/bin/python bench/bench_housekeeper.py
    .venv/bin/python bench/bench_housekeeper.py --files 20000 --dirs 20 --days 7 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runner.housekeeper import clean
from runner.results import CleanupReport as Report
from runner.specs import CleanupSpec

DAY = 86400.0
MARGIN = 0.1  # days kept clear on each side of the band where find and the policy differ


@dataclass(frozen=True)
class Entry:
    """One file of the tree: where, how old (days), how big."""

    path: str
    age: float
    size: int


def layout(files: int, dirs: int, days: int, seed: int) -> list[Entry]:
    """The files of the tree, spread over ``dirs`` subdirectories (some nested), with
    ages from 0 to 3N days, never in the band (N - margin, N + 1 + margin)."""
    rng = random.Random(seed)
    subdirs = [f"d{i:03d}" if i % 4 else f"d{i - 1 if i else 0:03d}/n{i:03d}" for i in range(dirs)]
    entries = []
    for i in range(files):
        while True:
            age = rng.uniform(0, 3 * days)
            if not days - MARGIN < age < days + 1 + MARGIN:
                break
        size = 100 if i % 10 == 0 else 0
        entries.append(Entry(f"{subdirs[i % dirs]}/f{i:06d}.log", age, size))
    return entries


def build(root: Path, entries: list[Entry]) -> None:
    """Create the tree; ages are relative to the moment it is built."""
    now = time.time()
    made: set[str] = set()
    payload = b"x" * max((e.size for e in entries), default=0)
    for entry in entries:
        parent = os.path.dirname(entry.path)
        if parent not in made:
            os.makedirs(root / parent, exist_ok=True)
            made.add(parent)
        path = os.path.join(root, entry.path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if entry.size:
                os.write(fd, payload[: entry.size])
        finally:
            os.close(fd)
        when = now - entry.age * DAY
        os.utime(path, (when, when))


def remaining(root: Path) -> set[str]:
    found: set[str] = set()
    for parent, _, names in os.walk(root):
        relative = os.path.relpath(parent, root)
        found.update(os.path.normpath(os.path.join(relative, name)) for name in names)
    return found


@contextmanager
def timed(into: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    into[name] = time.perf_counter() - started


def run_clean(root: Path, days: int, dry_run: bool) -> Report:
    spec = CleanupSpec(name="bench", directory=str(root), retention_days=days, recursive=True)
    return clean(spec, datetime.now(UTC), 30.0, dry_run)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def copy(template: Path, target: Path) -> None:
    """An identical tree, modification times included (``cp -a``, not timed)."""
    subprocess.run(["cp", "-a", str(template), str(target)], check=True)
    os.sync()  # the copy's writeback is not charged to whoever runs next


def process_config(base: Path, root: Path, days: int) -> tuple[Path, str]:
    """A config file naming the policy of :func:`run_clean` for ``root``, and a database URL."""
    config = base / "scheduler.yaml"
    policy = {"name": "bench", "directory": str(root), "retention_days": days, "recursive": True}
    config.write_text(json.dumps({"cleanup": [policy]}))  # JSON is YAML
    return config, f"sqlite:///{base / 'runner.db'}"


def run_process(config: Path, database: str) -> int:
    """``runner cleanup`` as a process; the number of files its report says it deleted."""
    command = [sys.executable, "-m", "runner", "cleanup", "--json"]
    done = subprocess.run(
        [*command, "--config", str(config), "--db", database],
        check=True,
        capture_output=True,
        text=True,
    )
    (report,) = json.loads(done.stdout)
    return int(report["deleted"])


def run_find(root: Path, days: int) -> None:
    command = ["find", str(root), "-type", "f", "-mtime", f"+{days}", "-delete"]
    subprocess.run(command, check=True, capture_output=True)


CONTENDERS = ("runner", "process", "find")


@dataclass
class Round:
    """One round: each contender on a fresh copy of the same tree."""

    seconds: dict[str, float]
    report: Report
    deleted: dict[str, set[str]]  # by contender: the files gone from its copy
    process_deleted: int  # as the process's report says


def one_round(base: Path, template: Path, every: set[str], days: int, first: int) -> Round:
    """Each contender on a fresh copy, starting with ``CONTENDERS[first]`` (rotated
    between rounds)."""
    seconds: dict[str, float] = {}
    deleted: dict[str, set[str]] = {}
    report: Report | None = None
    counted = 0
    for who in CONTENDERS[first:] + CONTENDERS[:first]:
        root = base / who
        copy(template, root)
        if who == "process":
            config, database = process_config(base / "process-files", root, days)
        with timed(seconds, who):
            if who == "runner":
                report = run_clean(root, days, dry_run=False)
            elif who == "process":
                counted = run_process(config, database)
            else:
                run_find(root, days)
        deleted[who] = every - remaining(root)
        shutil.rmtree(root)
    assert report is not None
    return Round(seconds, report, deleted, counted)


def check(rounds: list[Round], dry: Report, expected: set[str]) -> list[str]:
    """Why the contenders disagree, if they do (an empty list: they agree)."""
    problems = []
    for n, r in enumerate(rounds, 1):
        for who in CONTENDERS:
            if r.deleted[who] != expected:
                wrong = sorted(r.deleted[who] ^ expected)[:5]
                problems.append(
                    f"round {n}: {who} deleted {len(r.deleted[who]):,}, not {len(expected):,}"
                    f" (differing: {wrong})"
                )
        on_disk = len(r.deleted["runner"])
        if r.report.deleted != on_disk or dry.deleted != on_disk or r.process_deleted != on_disk:
            problems.append(
                f"round {n}: counts disagree: dry run {dry.deleted}, report {r.report.deleted}, "
                f"process report {r.process_deleted}, on disk {on_disk}"
            )
        if r.report.errors:
            problems.append(f"round {n}: errors {r.report.errors[:5]}")
    if dry.errors:
        problems.append(f"dry run errors: {dry.errors[:5]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--days", type=int, default=30, help="retention_days N (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="each contender once a round")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tmp", help="where to build the trees (default: the system tmp)")
    args = parser.parse_args(argv)
    if shutil.which("find") is None or shutil.which("cp") is None:
        print("find(1) and cp(1) are needed", file=sys.stderr)
        return 1

    entries = layout(args.files, args.dirs, args.days, args.seed)
    every = {e.path for e in entries}
    expected = {e.path for e in entries if e.age > args.days}
    base = Path(tempfile.mkdtemp(prefix="bench-housekeeper-", dir=args.tmp))
    seconds: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    try:
        print(
            f"tree: {len(entries):,} files in {args.dirs} directories under {base}; "
            f"{len(expected):,} older than {args.days} days; {args.rounds} rounds",
            flush=True,
        )
        template = base / "template"
        with timed(seconds, "build"):
            build(template, entries)
        copy(template, base / "dry")
        with timed(seconds, "dry"):
            dry = run_clean(base / "dry", args.days, dry_run=True)
        assert remaining(base / "dry") == every, "the dry run deleted files"
        shutil.rmtree(base / "dry")
        # The process's database made before the rounds, as a user's already is.
        (base / "process-files").mkdir()
        (base / "process").mkdir()
        run_process(*process_config(base / "process-files", base / "process", args.days))
        (base / "process").rmdir()
        rounds = [
            one_round(base, template, every, args.days, first=n % len(CONTENDERS))
            for n in range(args.rounds)
        ]
    finally:
        shutil.rmtree(base, ignore_errors=True)

    medians = {who: statistics.median(r.seconds[who] for r in rounds) for who in CONTENDERS}
    labels = {
        "runner": f"runner clean(), retention_days {args.days}",
        "process": "runner cleanup (whole process)",
        "find": f"find DIR -type f -mtime +{args.days} -delete",
    }
    rows = [["method", "files deleted", "median s", "rounds (s)", "files/s"]]
    times = {who: [r.seconds[who] for r in rounds] for who in CONTENDERS}
    counts = {who: len(rounds[0].deleted[who]) for who in CONTENDERS}
    for label, median, spread, count in [
        ("runner clean(), dry run", seconds["dry"], [seconds["dry"]], dry.deleted),
        *((labels[who], medians[who], times[who], counts[who]) for who in CONTENDERS),
    ]:
        shown = " ".join(f"{t:.3f}" for t in spread)
        rows.append([label, f"{count:,}", f"{median:.3f}", shown, f"{len(entries) / median:,.0f}"])
    print(table(rows))
    report = rounds[0].report
    print(
        f"runner report: scanned {report.scanned:,}, matched {report.matched:,}, "
        f"deleted {report.deleted:,}, freed {report.bytes_freed:,} bytes"
    )
    theirs = medians["find"]
    print(f"ratio runner clean() / find (medians): {medians['runner'] / theirs:.2f}")
    print(f"ratio runner cleanup process / find (medians): {medians['process'] / theirs:.2f}")
    print(
        f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
        f"on {os.cpu_count()} CPUs: figures taken under load are upper bounds"
    )
    problems = check(rounds, dry, expected)
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    if not problems:
        print(f"same set: all deleted the same {len(expected):,} files in every round")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
