"""The housekeeper: delete files by age, count and total size, and never anything else.

Planning is pure (:func:`plan`): candidates in, deletions out. Scanning and deleting work
through directory file descriptors, so a directory swapped for a symbolic link while a
cleanup runs cannot lead it outside its tree: every step opens names relative to an
already-open directory, refusing symbolic links (``O_NOFOLLOW``), and unlinks by name
relative to that directory after checking the file is still the one scanned. Only
regular files are ever removed; sockets, FIFOs and devices are skipped without opening.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from runner.config import SYSTEM_ROOTS, unsafe_directory
from runner.specs import CleanupSpec

log = logging.getLogger("runner.housekeeper")

MIB = 1024 * 1024
MAX_REPORTED = 100  # errors and would-delete names kept in a report
OPEN_DIRECTORIES = 64  # directory descriptors kept open at once


@dataclass(frozen=True)
class Candidate:
    """A regular file that matches a policy. ``path`` is relative to the policy directory."""

    path: str
    size: int
    mtime: float
    device: int
    inode: int


@dataclass(frozen=True)
class Deletion:
    candidate: Candidate
    reason: str  # age | count | size


@dataclass
class Report:
    """What one policy run did (or, in a dry run, would have done)."""

    policy: str
    directory: str
    dry_run: bool
    scanned: int = 0
    matched: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    errors: list[str] = field(default_factory=list)
    would_delete: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    duration: float = 0.0

    def error(self, message: str) -> None:
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(message)
        log.warning("cleanup %s: %s", self.policy, message)


def plan(
    candidates: Iterable[Candidate], spec: CleanupSpec, now: datetime, default_retention: float
) -> list[Deletion]:
    """Which candidates to delete: by age, then the oldest beyond ``max_files``, then the
    oldest until the rest fits in ``max_size_mb``. Ties in age are broken by name.

    A policy without any limit uses ``default_retention`` days.
    """
    # Newest first; for equal times, the name that sorts first counts as newer.
    ordered = sorted(candidates, key=lambda c: (-c.mtime, c.path))
    days = spec.retention_days
    if days is None and spec.max_files is None and spec.max_size_mb is None:
        days = default_retention
    deletions: list[Deletion] = []
    kept: list[Candidate] = []
    cutoff = (now - timedelta(days=days)).timestamp() if days is not None else None
    for candidate in ordered:
        if cutoff is not None and candidate.mtime < cutoff:
            deletions.append(Deletion(candidate, "age"))
        else:
            kept.append(candidate)
    if spec.max_files is not None:
        deletions.extend(Deletion(c, "count") for c in kept[spec.max_files :])
        kept = kept[: spec.max_files]
    if spec.max_size_mb is not None:
        limit, total = spec.max_size_mb * MIB, 0
        for index, candidate in enumerate(kept):
            total += candidate.size
            if total > limit:
                deletions.extend(Deletion(c, "size") for c in kept[index:])
                break
    return deletions


# --- scanning ---------------------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _matches(name: str, spec: CleanupSpec) -> bool:
    if not fnmatch.fnmatchcase(name, spec.pattern):
        return False
    return not any(fnmatch.fnmatchcase(name, glob) for glob in spec.exclude)


def display(path: str) -> str:
    """A file name safe to print: invalid UTF-8 and control characters escaped."""
    raw = os.fsencode(path).decode("utf-8", "backslashreplace")
    return raw.encode("unicode_escape").decode("ascii") if not raw.isprintable() else raw


def _system_identities() -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for root in SYSTEM_ROOTS:
        with contextlib.suppress(OSError):
            info = os.stat(root)
            found.add((info.st_dev, info.st_ino))
    return found


class _Tree:
    """The directories of one policy run, opened relative to each other without following
    links. Each is identified by device and inode when scanned; a few stay open, the
    others are opened again (and checked to be the same) when needed."""

    def __init__(self, spec: CleanupSpec, report: Report) -> None:
        self.spec = spec
        self.report = report
        # No trailing slash: it would make the kernel follow a symbolic link.
        root_fd = os.open(spec.directory.rstrip("/") or "/", _DIR_FLAGS)
        root = os.fstat(root_fd)
        if (root.st_dev, root.st_ino) in _system_identities():  # reached some other way
            os.close(root_fd)
            raise OSError(errno.EPERM, "it is a system directory")
        self.device = root.st_dev
        self.fds: dict[str, int] = {"": root_fd}
        self.identities: dict[str, tuple[int, int]] = {"": (root.st_dev, root.st_ino)}

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)

    def _dir(self, relative: str) -> int:
        """An open descriptor of the scanned directory ``relative`` (raises OSError)."""
        fd = self.fds.get(relative)
        if fd is not None:
            return fd
        parent, name = os.path.split(relative)
        fd = os.open(name, _DIR_FLAGS, dir_fd=self._dir(parent))
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != self.identities[relative]:
            os.close(fd)
            raise OSError(errno.ESTALE, "directory was replaced during the cleanup")
        if len(self.fds) >= OPEN_DIRECTORIES:
            evicted = next(k for k in self.fds if k)
            os.close(self.fds.pop(evicted))
        self.fds[relative] = fd
        return fd

    def walk(self) -> Iterator[Candidate]:
        """Regular files matching the policy, depth first; problems reported, not raised."""
        pending = [""]
        while pending:
            relative = pending.pop()
            try:
                entries = list(os.scandir(self._dir(relative)))
            except OSError as exc:
                self.report.error(f"cannot list {display(relative) or '.'}: {exc.strerror}")
                continue
            for entry in entries:
                path = os.path.join(relative, entry.name) if relative else entry.name
                yield from self._entry(entry, relative, path, pending)

    def _entry(
        self, entry: os.DirEntry[str], parent: str, path: str, pending: list[str]
    ) -> Iterator[Candidate]:
        try:
            info = os.stat(entry.name, dir_fd=self._dir(parent), follow_symlinks=False)
        except OSError as exc:  # vanished, or no permission
            self.report.error(f"cannot stat {display(path)}: {exc.strerror}")
            return
        if stat.S_ISDIR(info.st_mode):
            if self.spec.recursive:
                self._open_subdirectory(path, info, pending)
            return
        if not stat.S_ISREG(info.st_mode):
            return  # symbolic links, sockets, FIFOs, devices: never touched
        self.report.scanned += 1
        if _matches(entry.name, self.spec):
            self.report.matched += 1
            yield Candidate(path, info.st_size, info.st_mtime, info.st_dev, info.st_ino)

    def _open_subdirectory(self, path: str, info: os.stat_result, pending: list[str]) -> None:
        if info.st_dev != self.device:
            return  # another file system is mounted here: stay on ours
        self.identities[path] = (info.st_dev, info.st_ino)
        try:
            self._dir(path)  # refuses a symbolic link or a swapped directory
        except OSError as exc:
            self.report.error(f"cannot open {display(path)}: {exc.strerror}")
            return
        pending.append(path)

    def delete(self, candidate: Candidate) -> bool:
        """Unlink ``candidate`` if it is still the regular file that was scanned."""
        parent, name = os.path.split(candidate.path)
        try:
            fd = self._dir(parent)
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            # Inode numbers are reused at once: size and mtime tell a new file apart.
            scanned = (candidate.device, candidate.inode, candidate.size, candidate.mtime)
            same = (info.st_dev, info.st_ino, info.st_size, info.st_mtime) == scanned
            if not (same and stat.S_ISREG(info.st_mode)):
                self.report.error(f"{display(candidate.path)} changed since the scan; kept")
                return False
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            self.report.error(f"{display(candidate.path)} vanished before it was deleted")
            return False
        except OSError as exc:
            self.report.error(f"cannot delete {display(candidate.path)}: {exc.strerror}")
            return False
        return True


def clean(
    spec: CleanupSpec,
    now: datetime,
    default_retention: float,
    dry_run: bool,
    protected_files: Sequence[str] = (),
) -> Report:
    """Run one policy (blocking I/O; call it in a thread). Never raises for file problems."""
    dry_run = dry_run or spec.dry_run
    report = Report(spec.name, spec.directory, dry_run, started_at=now)
    started = time.monotonic()
    refusal = unsafe_directory(spec, protected_files)
    if refusal:
        report.error(refusal)
        return report
    try:
        tree = _Tree(spec, report)
    except OSError as exc:
        reason = exc.strerror
        with contextlib.suppress(OSError):  # O_NOFOLLOW | O_DIRECTORY: ENOTDIR, not ELOOP
            if stat.S_ISLNK(os.lstat(spec.directory.rstrip("/") or "/").st_mode):
                reason = "it is a symbolic link"
        report.error(f"cannot open {display(spec.directory)}: {reason}")
        return report
    try:
        for deletion in plan(tree.walk(), spec, now, default_retention):
            _apply(tree, deletion, report)
    finally:
        tree.close()
        report.duration = time.monotonic() - started
    return report


def _apply(tree: _Tree, deletion: Deletion, report: Report) -> None:
    candidate = deletion.candidate
    if report.dry_run:
        report.deleted += 1
        report.bytes_freed += candidate.size
        if len(report.would_delete) < MAX_REPORTED:
            report.would_delete.append(f"{display(candidate.path)} ({deletion.reason})")
    elif tree.delete(candidate):
        report.deleted += 1
        report.bytes_freed += candidate.size


async def clean_all(
    specs: Iterable[CleanupSpec],
    now: datetime,
    default_retention: float,
    dry_run: bool,
    concurrency: int,
    protected_files: Sequence[str] = (),
) -> list[Report]:
    """Run the enabled policies in priority order (lower first), ``concurrency`` at once."""
    ordered = sorted((s for s in specs if s.enabled), key=lambda s: (s.priority, s.name))
    gate = asyncio.Semaphore(concurrency)

    async def one(spec: CleanupSpec) -> Report:
        async with gate:
            args = (spec, now, default_retention, dry_run, protected_files)
            return await asyncio.to_thread(clean, *args)

    tasks = [asyncio.create_task(one(spec)) for spec in ordered]
    reports = list(await asyncio.gather(*tasks))
    for report in reports:
        log.info(
            "cleanup %s: %d deleted, %d bytes freed, %d errors%s",
            report.policy,
            report.deleted,
            report.bytes_freed,
            len(report.errors),
            " (dry run)" if report.dry_run else "",
            extra={
                "policy": report.policy,
                "scanned": report.scanned,
                "duration_s": round(report.duration, 3),
            },
        )
    return reports
