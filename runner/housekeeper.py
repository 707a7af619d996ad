"""The housekeeper: delete files by age, count and total size, and never anything else.

Planning is pure (:func:`plan`): candidates in, deletions out. Scanning and deleting work
through directory file descriptors, so a directory swapped for a symbolic link while a
cleanup runs cannot lead it outside its tree: every step opens names relative to an
already-open directory, refusing symbolic links (``O_NOFOLLOW``), and unlinks by name
relative to that directory right after a look (``fstatat``) that shows the file is the
one judged. Only regular files are ever removed; sockets, FIFOs and devices are skipped
without opening.

A cleanup goes in two passes. The first lists every directory of the policy (names and
types only, from ``getdents``), so that a protected directory anywhere in the tree
refuses the whole policy before anything is deleted. The second looks at each listed
file once: a file past ``retention_days`` is unlinked at once, judged by that very look
(as ``find -mtime +N -delete`` does); the others wait for the count and size limits,
which need the whole tree in order, and each of those is looked at again just before
its unlink and kept if it changed since.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from runner import safety
from runner.errors import NotFound
from runner.results import MAX_REPORTED
from runner.results import CleanupReport as Report
from runner.specs import CleanupSpec, HousekeeperSettings

log = logging.getLogger("runner.housekeeper")

MIB = 1024 * 1024
OPEN_DIRECTORIES = 64  # directory descriptors kept open at once


@dataclass(frozen=True)
class Candidate:
    """A regular file that matches a policy. ``path`` is relative to the policy directory."""

    path: str
    size: int
    mtime: float
    device: int
    inode: int
    links: int = 1  # hard links (st_nlink) when scanned

    @classmethod
    def of(cls, path: str, info: os.stat_result) -> Candidate:
        return cls(path, info.st_size, info.st_mtime, info.st_dev, info.st_ino, info.st_nlink)


@dataclass(frozen=True)
class Deletion:
    candidate: Candidate
    reason: str  # age | count | size


def plan(
    candidates: Iterable[Candidate], spec: CleanupSpec, now: datetime, default_retention: float
) -> list[Deletion]:
    """Which candidates to delete: by age, then the oldest beyond ``max_files``, then the
    oldest until the rest fits in ``max_size_mb``. Ties in age are broken by name.

    A policy without any limit uses ``default_retention`` days.
    """
    # Newest first; for equal times, the name that sorts first counts as newer.
    ordered = sorted(candidates, key=lambda c: (-c.mtime, c.path))
    deletions: list[Deletion] = []
    kept: list[Candidate] = []
    cutoff = age_cutoff(spec, now, default_retention)
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


def age_cutoff(spec: CleanupSpec, now: datetime, default_retention: float) -> float | None:
    """The modification time (POSIX seconds) before which a file is past the policy's age
    limit, or None when it has none. A policy without any limit uses
    ``default_retention`` days."""
    days = spec.retention_days
    if days is None and spec.max_files is None and spec.max_size_mb is None:
        days = default_retention
    return (now - timedelta(days=days)).timestamp() if days is not None else None


# --- scanning ---------------------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _matcher(spec: CleanupSpec) -> Callable[[str], object]:
    """Whether (truthy) a file name matches ``pattern`` and no ``exclude`` glob (compiled
    once; without exclusions, the pattern's own ``match``, with no Python call around it)."""
    pattern = re.compile(fnmatch.translate(spec.pattern)).match
    excluded = [re.compile(fnmatch.translate(glob)).match for glob in spec.exclude]
    if not excluded:
        return pattern
    return lambda name: pattern(name) is not None and not any(x(name) for x in excluded)


def display(path: str) -> str:
    """A file name safe to print: invalid UTF-8 and control characters escaped."""
    raw = os.fsencode(path).decode("utf-8", "backslashreplace")
    return raw.encode("unicode_escape").decode("ascii") if not raw.isprintable() else raw


def _mount_id(fd: int) -> int | None:
    """The id of the mount that the open directory ``fd`` is on; None where Linux's
    ``/proc/self/fdinfo`` is missing. Unlike ``st_dev``, this tells a bind mount of a
    directory of the same file system apart from the directory around it."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as info:
            for line in info:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class _Refused(Exception):
    """The policy reaches a protected directory: nothing of it may be deleted."""


class _Tree:
    """The directories of one policy run, opened relative to each other without following
    links, depth first and without recursion (a tree may be thousands of levels deep).

    Each directory is identified by device and inode when its parent is scanned; a few
    stay open (least recently used closed first), the others are opened again from
    their nearest open ancestor, and checked to be the same, when needed. Directories
    on another mount (another file system, or a bind mount of this one) are skipped.
    """

    def __init__(self, spec: CleanupSpec, report: Report, fence: safety.Fence) -> None:
        self.spec = spec
        self.report = report
        self.fence = fence
        self.matches = _matcher(spec)
        # No trailing slash: it would make the kernel follow a symbolic link. Links in
        # the middle of the path are followed, but every check below is on what opened.
        self.root = os.open(spec.directory.rstrip("/") or "/", _DIR_FLAGS)
        try:
            info = os.fstat(self.root)
            self._fence((info.st_dev, info.st_ino), "")
        except BaseException:
            os.close(self.root)
            raise
        self.device = info.st_dev
        self.mount = _mount_id(self.root)
        self.fds: dict[str, int] = {}  # open subdirectories, least recently used first
        self.identities: dict[str, tuple[int, int]] = {"": (info.st_dev, info.st_ino)}

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        os.close(self.root)

    def _fence(self, identity: tuple[int, int], relative: str) -> None:
        reason = self.fence.refusal(identity)
        if reason:
            where = f"{display(relative)}: " if relative else ""
            directory = safety.normal(self.spec.directory)
            raise _Refused(f"refusing to clean {directory}: {where}{reason}")

    def _dir(self, relative: str) -> int:
        """An open descriptor of the scanned directory ``relative`` (raises OSError)."""
        if not relative:
            return self.root
        fd = self.fds.pop(relative, None)
        if fd is None:
            fd = self._open(relative)
        self._keep(relative, fd)
        return fd

    def _open(self, relative: str) -> int:
        # Down from the nearest open ancestor, one component at a time.
        chain = [relative]
        while (parent := os.path.dirname(chain[-1])) and parent not in self.fds:
            chain.append(parent)
        fd = self.fds[parent] if parent else self.root
        for path in reversed(chain):
            fd = os.open(os.path.basename(path), _DIR_FLAGS, dir_fd=fd)
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != self.identities[path]:
                os.close(fd)
                raise OSError(errno.ESTALE, "directory was replaced during the cleanup")
            if path != relative:
                self._keep(path, fd)
        return fd

    def _keep(self, relative: str, fd: int) -> None:
        self.fds[relative] = fd
        while len(self.fds) >= max(OPEN_DIRECTORIES, 2):  # the root is open too
            os.close(self.fds.pop(next(iter(self.fds))))

    def listing(self) -> list[tuple[str, list[str]]]:
        """The first pass: each directory with the names of its regular files that match
        the policy (from the directory entries' types: no file is looked at yet).

        Raises :class:`_Refused` when a subdirectory is protected: nothing has been
        deleted yet. Problems are reported, not raised."""
        found: list[tuple[str, list[str]]] = []
        pending = [""]
        while pending:
            relative = pending.pop()
            fd = self._enter(relative)
            if fd is None:
                continue
            try:
                entries = list(os.scandir(fd))
            except OSError as exc:
                self.report.error(f"cannot list {display(relative) or '.'}: {exc.strerror}")
                continue
            # Nothing opens or closes a directory until this one is done: ``fd`` stays valid.
            names = self._files(fd, entries, relative, pending)
            if names:
                found.append((relative, names))
        return found

    def _enter(self, relative: str) -> int | None:
        try:
            fd = self._dir(relative)  # refuses a symbolic link or a swapped directory
        except OSError as exc:
            self.report.error(f"cannot open {display(relative)}: {exc.strerror}")
            return None
        if relative and _mount_id(fd) != self.mount:
            return None  # a mount point, a bind mount too: stay on the policy's mount
        return fd

    def _files(
        self, fd: int, entries: list[os.DirEntry[str]], parent: str, pending: list[str]
    ) -> list[str]:
        """The names of the matching regular files among ``entries``; subdirectories
        go on ``pending`` (when recursive). The entry's type (d_type) sorts most entries
        without a system call; symbolic links, sockets, FIFOs, devices are never touched."""
        files: list[str] = []
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                files.append(entry.name)
            elif self.spec.recursive and entry.is_dir(follow_symlinks=False):
                name = entry.name
                self._subdirectory(fd, name, f"{parent}/{name}" if parent else name, pending)
        self.report.scanned += len(files)
        return list(filter(self.matches, files))

    def judge(
        self, listing: list[tuple[str, list[str]]], cutoff: float | None, plan_rest: bool
    ) -> list[Candidate]:
        """The second pass: look at each listed file (``fstatat``, links not followed).
        A file older than ``cutoff`` is unlinked at once, judged by that look; with
        ``plan_rest``, the others are returned as candidates for :func:`plan` (without,
        the policy has nothing else to judge them by). Problems are reported, not raised.

        The look is the last system call on the file's name before its unlink, exactly
        as the re-check before a planned deletion is (:meth:`delete`)."""
        candidates: list[Candidate] | None = [] if plan_rest else None
        for relative, names in listing:
            try:
                fd = self._dir(relative)
            except OSError as exc:
                self.report.error(f"cannot open {display(relative)}: {exc.strerror}")
                continue
            self._judge(fd, relative, names, cutoff, candidates)
        return candidates or []

    def _judge(
        self,
        fd: int,
        parent: str,
        names: list[str],
        cutoff: float | None,
        candidates: list[Candidate] | None,
    ) -> None:
        # The loop of the whole cleanup: names bound locally, a path built only when needed.
        lstat, unlink, regular, fenced = os.stat, os.unlink, stat.S_ISREG, self.fence.files
        report, prefix = self.report, f"{parent}/" if parent else ""
        oldest = float("-inf") if cutoff is None else cutoff
        matched = deleted = freed = 0
        for name in names:
            try:
                info = lstat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as exc:  # vanished, or no permission
                report.error(f"cannot stat {display(prefix + name)}: {exc.strerror}")
                continue
            if not regular(info.st_mode) or (info.st_dev, info.st_ino) in fenced:
                continue  # replaced since it was listed; or a hard link to our own file
            matched += 1
            if info.st_mtime >= oldest:
                if candidates is not None:
                    candidates.append(Candidate.of(prefix + name, info))
                continue
            try:
                unlink(name, dir_fd=fd)
            except OSError as exc:
                report.error(_not_deleted(prefix + name, exc))
                continue
            deleted += 1
            freed += info.st_size if info.st_nlink == 1 else 0
        report.matched += matched
        report.deleted += deleted
        report.bytes_freed += freed

    def _subdirectory(self, fd: int, name: str, path: str, pending: list[str]) -> None:
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            self.report.error(f"cannot stat {display(path)}: {exc.strerror}")
            return
        if not stat.S_ISDIR(info.st_mode) or info.st_dev != self.device:
            return  # replaced since it was listed, or another file system is mounted here
        identity = (info.st_dev, info.st_ino)
        self._fence(identity, path)
        self.identities[path] = identity
        pending.append(path)

    def delete(self, parent: str, candidates: list[Candidate]) -> Iterator[os.stat_result]:
        """Unlink each of ``candidates`` (all in directory ``parent``) that is still the
        regular file that was scanned; yield what each deleted file was just before."""
        try:
            fd = self._dir(parent)
        except OSError as exc:
            for candidate in candidates:
                self.report.error(f"cannot delete {display(candidate.path)}: {exc.strerror}")
            return
        for candidate in candidates:
            info = self._unlink(fd, candidate)
            if info is not None:
                yield info

    def _unlink(self, fd: int, candidate: Candidate) -> os.stat_result | None:
        name = os.path.basename(candidate.path)
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            # Inode numbers are reused at once: size and mtime tell a new file apart.
            scanned = (candidate.device, candidate.inode, candidate.size, candidate.mtime)
            same = (info.st_dev, info.st_ino, info.st_size, info.st_mtime) == scanned
            if not (same and stat.S_ISREG(info.st_mode)):
                self.report.error(f"{display(candidate.path)} changed since the scan; kept")
                return None
            os.unlink(name, dir_fd=fd)
        except OSError as exc:
            self.report.error(_not_deleted(candidate.path, exc))
            return None
        return info


def clean(
    spec: CleanupSpec,
    now: datetime,
    default_retention: float,
    dry_run: bool,
    protected_files: Sequence[str] = (),
) -> Report:
    """Run one policy (blocking I/O; call it in a thread). Never raises for file problems.

    Refused, with nothing deleted, when the policy reaches a system directory or one
    holding ``protected_files`` (checked on the paths, then on what is actually opened).
    """
    dry_run = dry_run or spec.dry_run
    report = Report(spec.name, spec.directory, dry_run, started_at=now)
    started = time.monotonic()
    refusal = safety.unsafe_directory(spec, protected_files)
    if refusal:
        report.error(refusal)
        return report
    try:
        tree = _Tree(spec, report, safety.Fence.around(protected_files))
    except _Refused as exc:
        report.error(str(exc))
        return report
    except OSError as exc:
        reason = exc.strerror
        with contextlib.suppress(OSError):  # O_NOFOLLOW | O_DIRECTORY: ENOTDIR, not ELOOP
            if stat.S_ISLNK(os.lstat(spec.directory.rstrip("/") or "/").st_mode):
                reason = "it is a symbolic link"
        report.error(f"cannot open {display(spec.directory)}: {reason}")
        return report
    try:
        listing = tree.listing()  # the whole tree, before anything is deleted
        # A dry run plans every file, to list each with its reason in plan's order.
        cutoff = None if dry_run else age_cutoff(spec, now, default_retention)
        limited = spec.max_files is not None or spec.max_size_mb is not None
        candidates = tree.judge(listing, cutoff, plan_rest=dry_run or limited)
        _apply(tree, plan(candidates, spec, now, default_retention), report)
    except _Refused as exc:
        report.error(str(exc))
    finally:
        tree.close()
        report.duration = time.monotonic() - started
    return report


def _apply(tree: _Tree, deletions: list[Deletion], report: Report) -> None:
    """Delete (or, in a dry run, list) ``deletions``. Bytes count as freed only for a file
    without other hard links: deleting one name of several frees nothing."""
    if report.dry_run:
        for deletion in deletions:
            candidate = deletion.candidate
            report.deleted += 1
            report.bytes_freed += candidate.size if candidate.links == 1 else 0
            if len(report.would_delete) < MAX_REPORTED:
                report.would_delete.append(f"{display(candidate.path)} ({deletion.reason})")
        return
    # Directory by directory: each is opened (at most) once more, not once per file.
    by_directory: dict[str, list[Candidate]] = {}
    for deletion in deletions:
        candidate = deletion.candidate
        by_directory.setdefault(os.path.dirname(candidate.path), []).append(candidate)
    for parent in sorted(by_directory):  # parents before children: their descriptors help
        for info in tree.delete(parent, by_directory[parent]):
            report.deleted += 1
            report.bytes_freed += info.st_size if info.st_nlink == 1 else 0


def chosen(known: Sequence[CleanupSpec], names: Sequence[str]) -> list[CleanupSpec]:
    """Of ``known``, the policies ``names`` names (all of them when it names none);
    :class:`NotFound` for a name no policy has."""
    unknown = set(names) - {spec.name for spec in known}
    if unknown:
        raise NotFound(f"no cleanup policy named {', '.join(sorted(unknown))}")
    return [spec for spec in known if not names or spec.name in names]


async def run(
    policies: Sequence[CleanupSpec],
    settings: HousekeeperSettings,
    now: datetime,
    protected_files: Sequence[str] = (),
    dry_run: bool = False,
    finished: Callable[[Report], None] = lambda _report: None,
) -> list[Report]:
    """Run ``policies`` under the housekeeper ``settings`` (their default retention, dry
    run and concurrency); ``finished`` hears of each report as its policy is done."""
    return await clean_all(
        policies,
        now,
        settings.default_retention,
        dry_run or settings.dry_run,
        settings.concurrent_cleanups,
        protected_files,
        finished,
    )


async def clean_all(
    specs: Iterable[CleanupSpec],
    now: datetime,
    default_retention: float,
    dry_run: bool,
    concurrency: int,
    protected_files: Sequence[str] = (),
    finished: Callable[[Report], None] = lambda _report: None,
) -> list[Report]:
    """Run the enabled policies in priority order (lower first), ``concurrency`` at once;
    ``finished`` hears of each report as soon as its policy is done (for progress)."""
    ordered = sorted((s for s in specs if s.enabled), key=lambda s: (s.priority, s.name))
    gate = asyncio.Semaphore(concurrency)

    async def one(spec: CleanupSpec) -> Report:
        async with gate:
            args = (spec, now, default_retention, dry_run, protected_files)
            report = await asyncio.to_thread(clean, *args)
        finished(report)
        return report

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


def _not_deleted(path: str, exc: OSError) -> str:
    """Why the file at ``path`` could not be deleted, for the report."""
    if isinstance(exc, FileNotFoundError):
        return f"{display(path)} vanished before it was deleted"
    return f"cannot delete {display(path)}: {exc.strerror}"
