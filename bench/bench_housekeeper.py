"""The housekeeper against ``find -delete`` on a large tree: same files, same run.

Builds a tree of 100,000 files (by default) in about 100 subdirectories, with mixed ages
set through ``os.utime``, in a temporary directory; builds an identical fresh copy for each
contender, then times:

* runner, dry run    -- ``clean()`` with ``dry_run=True`` (scans and plans, deletes nothing)
* runner             -- ``clean()`` on ``retention_days: N, recursive: true``
* find -delete       -- ``find DIR -type f -mtime +N -delete``

and checks that both deleted exactly the same set of files (and that the dry run named the
same number). ``find -mtime +N`` means "at least N+1 whole days old" while the policy means
"older than N days", so no file is given an age between N and N+1 days (plus a margin):
on every other file the two rules agree.

    .venv/bin/python bench/bench_housekeeper.py
    .venv/bin/python bench/bench_housekeeper.py --files 20000 --dirs 20 --days 7
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
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


def fresh(base: Path, name: str, entries: list[Entry], seconds: dict[str, float]) -> Path:
    root = base / name
    with timed(seconds, f"build {name}"):
        build(root, entries)
    return root


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--days", type=int, default=30, help="retention_days N (default 30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tmp", help="where to build the trees (default: the system tmp)")
    args = parser.parse_args(argv)
    if shutil.which("find") is None:
        print("find(1) is not installed", file=sys.stderr)
        return 1

    entries = layout(args.files, args.dirs, args.days, args.seed)
    expected = {e.path for e in entries if e.age > args.days}
    base = Path(tempfile.mkdtemp(prefix="bench-housekeeper-", dir=args.tmp))
    seconds: dict[str, float] = {}
    try:
        print(
            f"tree: {len(entries):,} files in {args.dirs} directories under {base}; "
            f"{len(expected):,} older than {args.days} days",
            flush=True,
        )
        ours = fresh(base, "runner", entries, seconds)
        with timed(seconds, "dry"):
            dry = run_clean(ours, args.days, dry_run=True)
        assert remaining(ours) == {e.path for e in entries}, "the dry run deleted files"
        with timed(seconds, "runner"):
            report = run_clean(ours, args.days, dry_run=False)
        runner_deleted = {e.path for e in entries} - remaining(ours)
        shutil.rmtree(ours)

        theirs = fresh(base, "find", entries, seconds)
        command = ["find", str(theirs), "-type", "f", "-mtime", f"+{args.days}", "-delete"]
        with timed(seconds, "find"):
            subprocess.run(command, check=True, capture_output=True)
        find_deleted = {e.path for e in entries} - remaining(theirs)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    contenders = [
        ("runner clean(), dry run", dry.deleted, "dry"),
        (f"runner clean(), retention_days {args.days}", len(runner_deleted), "runner"),
        (" ".join(["find", "DIR", *command[2:]]), len(find_deleted), "find"),
    ]
    rows = [["method", "files deleted", "seconds", "files/s"]]
    for label, count, key in contenders:
        rate = len(entries) / seconds[key]
        rows.append([label, f"{count:,}", f"{seconds[key]:.3f}", f"{rate:,.0f}"])
    print(table(rows))
    print(
        f"runner report: scanned {report.scanned:,}, matched {report.matched:,}, "
        f"deleted {report.deleted:,}, freed {report.bytes_freed:,} bytes, "
        f"{len(report.errors)} errors, duration {report.duration:.3f} s"
    )
    print(f"tree build: {seconds['build runner']:.1f} s and {seconds['build find']:.1f} s")

    problems = []
    if runner_deleted != find_deleted:
        only_runner = sorted(runner_deleted - find_deleted)[:5]
        only_find = sorted(find_deleted - runner_deleted)[:5]
        problems.append(f"different sets: only runner {only_runner}, only find {only_find}")
    if runner_deleted != expected:
        problems.append(f"runner deleted {len(runner_deleted):,}, expected {len(expected):,}")
    if report.deleted != len(runner_deleted) or dry.deleted != report.deleted:
        problems.append(
            f"counts disagree: dry run {dry.deleted}, report {report.deleted}, "
            f"on disk {len(runner_deleted)}"
        )
    if report.errors or dry.errors:
        problems.append(f"errors: {(report.errors + dry.errors)[:5]}")
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    if not problems:
        print(f"same set: both deleted the same {len(find_deleted):,} files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
