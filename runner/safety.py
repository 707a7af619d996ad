"""Where a cleanup policy may never delete: the system's own trees and the runner's files.

Two checks share these rules. :func:`unsafe_directory` judges a policy by its paths,
both as written and resolved (``os.path.realpath``), so ``runner validate`` can refuse
it with a line number. :class:`Fence` judges what a cleanup has actually opened, by
device and inode: a symbolic link in any component of a path, a bind mount or a second
spelling of the same directory cannot lead a cleanup into a protected directory,
however the path was written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from runner import dburl
from runner.specs import CleanupSpec

# Never cleaned, whatever a policy says: the file system root and the system's own trees.
SYSTEM_ROOTS = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
        "/usr/bin",
        "/usr/lib",
        "/usr/local",
        "/usr/sbin",
        "/var/lib",
    ]
)
# SQLite's companions of a database file: all of them are the database.
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")

#: A file's identity: (st_dev, st_ino).
Identity = tuple[int, int]


def own_files(config_files: Iterable[str], database_url: str) -> list[str]:
    """The runner's own files, which no cleanup policy may reach: its config files, its
    SQLite database and that database's journal files."""
    database = dburl.sqlite_file(database_url)
    journal = [database + suffix for suffix in SQLITE_COMPANIONS] if database else []
    return [*config_files, *journal]


def unsafe_directory(spec: CleanupSpec, protected_files: Iterable[str]) -> str | None:
    """Why a cleanup policy may not run where it points, or None when it may.

    Judged on paths, as written and resolved; :class:`Fence` judges what is opened."""
    unusable = _unusable(spec.directory)
    if unusable:
        return unusable
    directory = normal(spec.directory)
    spellings = {directory, os.path.realpath(directory)}
    if spellings & SYSTEM_ROOTS:
        return f"refusing to clean {directory}: it is a system directory"
    for protected in protected_files:
        for parent in _parents(protected):
            if any(_reaches(d, parent, spec.recursive) for d in spellings):
                return f"refusing to clean {directory}: it holds the runner's own {protected}"
    return None


def _unusable(path: str) -> str | None:
    """Why no file system call could take ``path`` (they would raise), or None."""
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:
        return "a directory name cannot contain unpaired surrogate characters"
    return "a directory name cannot contain a NUL character" if b"\0" in encoded else None


def normal(path: str) -> str:
    """``path`` normalised, with a leading ``//`` made ``/``."""
    directory = os.path.normpath(path)
    if directory.startswith("//"):  # normpath keeps a leading "//" (POSIX allows it)
        directory = "/" + directory.lstrip("/")
    return directory


def _parents(path: str) -> set[str]:
    """The directory holding ``path``, as written and with every link resolved."""
    return {os.path.dirname(os.path.abspath(path)), os.path.dirname(os.path.realpath(path))}


def _reaches(directory: str, parent: str, recursive: bool) -> bool:
    return parent == directory or (recursive and parent.startswith(directory.rstrip("/") + "/"))


@dataclass
class Fence:
    """The identities of protected directories and files, taken when a cleanup starts.

    A directory is protected when it is a system root or holds one of the runner's own
    files; a file, when it is one of them (a hard link to the database is the database).
    """

    directories: dict[Identity, str] = field(default_factory=dict)  # → why it is refused
    files: set[Identity] = field(default_factory=set)

    @classmethod
    def around(cls, protected_files: Iterable[str]) -> Fence:
        fence = cls()
        for root in SYSTEM_ROOTS:
            fence._directory(root, "it is a system directory")
        for protected in protected_files:
            for parent in _parents(protected):
                fence._directory(parent, f"it holds the runner's own {protected}")
            with contextlib.suppress(OSError):  # not there (yet): its directory is fenced
                info = os.stat(protected)
                fence.files.add((info.st_dev, info.st_ino))
        return fence

    def _directory(self, path: str, reason: str) -> None:
        with contextlib.suppress(OSError):
            info = os.stat(path)
            self.directories.setdefault((info.st_dev, info.st_ino), reason)

    def refusal(self, identity: Identity) -> str | None:
        """Why the directory with ``identity`` may not be cleaned, or None."""
        return self.directories.get(identity)
