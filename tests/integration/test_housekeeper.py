"""The housekeeper on real file trees (``tmp_path``): what it deletes, and everything it must not.

Races (a directory swapped for a symbolic link while a cleanup runs, a file vanishing
between scan and delete) are made deterministic by wrapping ``plan`` or an ``os``
function so that the swap happens at one exact point. As root, permissions do not stop
an unlink, so a permission error comes from an immutable file (``chattr +i``) or from a
wrapped ``os.unlink``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import os
import shutil
import socket
import stat
import subprocess
import textwrap
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runner import config as configs
from runner import housekeeper
from runner.housekeeper import Candidate, Deletion, clean, clean_all
from runner.loop import Runner, run_housekeeping
from runner.results import CleanupReport as Report
from runner.specs import CleanupSpec, HousekeeperSettings, Settings
from runner.store.sql import Store
from runner.store.tables import cleanup_configs
from tests.fakes import FakeClock

NOW = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0
DEFAULT_RETENTION = 30.0
NOTHING = "no-such-file-*"  # a pattern for policies pointed at real system directories


def put(path: str | bytes | Path, age_days: float, size: int = 0) -> None:
    """A regular file of ``size`` bytes, last modified ``age_days`` before NOW."""
    parent = os.path.dirname(os.fsencode(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as out:
        out.write(b"x" * size)
    age(path, age_days)


def age(path: str | bytes | Path, age_days: float) -> None:
    """Set the modification time (of a link itself, not what it points to)."""
    when = NOW.timestamp() - age_days * DAY
    os.utime(path, (when, when), follow_symlinks=False)


def policy(directory: str | Path, **fields: Any) -> CleanupSpec:
    fields.setdefault("pattern", "*.log")
    return CleanupSpec(name=fields.pop("name", "logs"), directory=str(directory), **fields)


def run(spec: CleanupSpec, dry_run: bool = False, protected: Iterable[str] = ()) -> Report:
    return clean(spec, NOW, DEFAULT_RETENTION, dry_run, list(protected))


def listing(directory: Path) -> list[str]:
    """Every path under ``directory`` (relative, directories with a trailing /), sorted."""
    found = []
    for root, dirs, files in os.walk(directory):
        relative = os.path.relpath(root, directory)
        for name in dirs:
            found.append(os.path.normpath(os.path.join(relative, name)) + "/")
        found.extend(os.path.normpath(os.path.join(relative, name)) for name in files)
    return sorted(found)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    path = tmp_path / "tree"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the policy's tree, with an old matching file that must survive."""
    path = tmp_path / "outside"
    put(path / "old.log", 100, 7)
    return path


@pytest.fixture(params=["planned", "at-once"])
def limit(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A policy's limit that deletes every old file, either way a deletion is made: a count
    limit waits for the whole plan, then looks at each file again before its unlink; an
    age limit unlinks each file right after the look that judged it."""
    return {"max_files": 0} if request.param == "planned" else {"retention_days": 5}


# --- what goes ----------------------------------------------------------------------------


def test_age_limit_on_a_real_tree_and_the_report(tree: Path) -> None:
    put(tree / "new.log", 1, 10)
    put(tree / "old.log", 8, 100)
    put(tree / "older.log", 9, 1000)
    put(tree / "old.txt", 100, 5)  # does not match the pattern
    report = run(policy(tree, retention_days=7))
    assert listing(tree) == ["new.log", "old.txt"]
    assert (report.policy, report.directory, report.dry_run) == ("logs", str(tree), False)
    assert (report.scanned, report.matched, report.deleted) == (4, 3, 2)
    assert report.bytes_freed == 1100
    assert report.errors == []
    assert report.would_delete == []
    assert report.started_at == NOW
    assert report.duration >= 0


def test_count_and_size_limits_on_a_real_tree(tree: Path) -> None:
    for day in range(1, 7):
        put(tree / f"f{day}.log", day, 300_000)
    report = run(policy(tree, max_files=4, max_size_mb=1))
    # count keeps f1..f4 (1.2 MB); size keeps f1..f3 (900 kB <= 1 MiB)
    assert listing(tree) == ["f1.log", "f2.log", "f3.log"]
    assert (report.deleted, report.bytes_freed) == (3, 900_000)


def test_default_retention_applies_without_limits(tree: Path) -> None:
    put(tree / "month.log", DEFAULT_RETENTION - 1)
    put(tree / "stale.log", DEFAULT_RETENTION + 1)
    run(policy(tree))
    assert listing(tree) == ["month.log"]


def test_ties_in_age_keep_the_name_that_sorts_first(tree: Path) -> None:
    for name in ("b.log", "c.log", "a.log"):
        put(tree / name, 3)
    run(policy(tree, max_files=1))
    assert listing(tree) == ["a.log"]


def test_not_recursive_leaves_subdirectories_alone(tree: Path) -> None:
    put(tree / "old.log", 100)
    put(tree / "sub" / "old.log", 100)
    report = run(policy(tree, max_files=0))
    assert listing(tree) == ["sub/", "sub/old.log"]
    assert report.scanned == 1


def test_recursive_descends_and_counts_across_directories(tree: Path) -> None:
    put(tree / "a.log", 1)
    put(tree / "x" / "b.log", 2)
    put(tree / "x" / "y" / "z" / "c.log", 3)
    put(tree / "w" / "d.log", 4)
    report = run(policy(tree, recursive=True, max_files=2))
    assert listing(tree) == ["a.log", "w/", "x/", "x/b.log", "x/y/", "x/y/z/"]
    assert (report.scanned, report.deleted) == (4, 2)


def test_exclude_is_honoured_in_every_directory(tree: Path) -> None:
    put(tree / "app.log", 100)
    put(tree / "audit.log", 100)
    put(tree / "sub" / "audit-2020.log", 100)
    put(tree / "sub" / "debug.log", 100)
    report = run(policy(tree, recursive=True, max_files=0, exclude=("audit*", "*.keep")))
    assert listing(tree) == ["audit.log", "sub/", "sub/audit-2020.log"]
    assert (report.scanned, report.matched, report.deleted) == (4, 2, 2)


def test_directories_are_never_deleted(tree: Path) -> None:
    (tree / "empty.log").mkdir()
    (tree / "sub" / "nested.log").mkdir(parents=True)
    age(tree / "empty.log", 100)
    age(tree / "sub" / "nested.log", 100)
    for recursive in (False, True):
        report = run(policy(tree, recursive=recursive, max_files=0, pattern="*"))
        assert report.errors == []
        assert report.deleted == 0
    assert listing(tree) == ["empty.log/", "sub/", "sub/nested.log/"]


# --- symbolic links -----------------------------------------------------------------------


def test_a_symlink_to_a_file_is_neither_followed_nor_deleted(
    tree: Path, outside: Path, limit: dict[str, Any]
) -> None:
    put(tree / "inside-target.txt", 100)
    os.symlink(outside / "old.log", tree / "out.log")
    os.symlink("inside-target.txt", tree / "in.log")
    os.symlink("nowhere", tree / "dangling.log")
    for link in ("out.log", "in.log", "dangling.log"):
        age(tree / link, 100)
    report = run(policy(tree, **limit, pattern="*"))
    assert report.deleted == 1  # inside-target.txt, a regular file matching "*"
    assert sorted(os.listdir(tree)) == ["dangling.log", "in.log", "out.log"]
    assert all((tree / link).is_symlink() for link in os.listdir(tree))
    assert (outside / "old.log").read_bytes() == b"x" * 7
    assert report.scanned == 1


def test_a_symlink_to_a_directory_is_not_followed(
    tree: Path, outside: Path, limit: dict[str, Any]
) -> None:
    put(tree / "sub" / "mine.log", 100)
    os.symlink(outside, tree / "linked")
    os.symlink(outside, tree / "linked.log")
    report = run(policy(tree, recursive=True, **limit))
    assert (outside / "old.log").exists()
    assert (tree / "linked").is_symlink()
    assert (tree / "linked.log").is_symlink()
    assert not (tree / "sub" / "mine.log").exists()
    assert (report.scanned, report.deleted, report.errors) == (1, 1, [])


def test_a_symlink_planted_where_a_subdirectory_was(
    tree: Path, outside: Path, limit: dict[str, Any]
) -> None:
    put(tree / "sub" / "old.log", 100)
    shutil.rmtree(tree / "sub")
    os.symlink(outside, tree / "sub")
    report = run(policy(tree, recursive=True, **limit))
    assert (outside / "old.log").exists()
    assert report.deleted == 0


def test_the_policy_directory_being_a_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    link = tmp_path / "link"
    os.symlink(outside, link)
    report = run(policy(link, max_files=0))
    assert (outside / "old.log").exists()
    assert report.deleted == 0
    assert report.scanned == 0
    (error,) = report.errors
    assert error.startswith(f"cannot open {link}")


def test_the_refusal_of_a_symlinked_policy_directory_says_why(
    tmp_path: Path, outside: Path
) -> None:
    # O_NOFOLLOW | O_DIRECTORY on a symbolic link fails with ENOTDIR on Linux, not ELOOP:
    # the report must still say it is a link, not "Not a directory".
    link = tmp_path / "link"
    os.symlink(outside, link)
    (error,) = run(policy(link, max_files=0)).errors
    assert error == f"cannot open {link}: it is a symbolic link"


def test_a_symlinked_policy_directory_is_refused_with_a_trailing_slash(
    tmp_path: Path, outside: Path
) -> None:
    # A trailing slash makes the kernel resolve the last component, past O_NOFOLLOW.
    link = tmp_path / "link"
    os.symlink(outside, link)
    report = run(policy(f"{link}/", max_files=0))
    assert (outside / "old.log").exists()
    assert report.errors, "a symlinked policy directory must be refused"


# --- never leaving the directory, under races -----------------------------------------------


@pytest.mark.parametrize("open_directories", [housekeeper.OPEN_DIRECTORIES, 2])
def test_subdirectory_swapped_for_a_symlink_between_scan_and_delete(
    tree: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, open_directories: int
) -> None:
    """With few descriptors kept open, the swapped directory must be reopened: refused."""
    put(tree / "a" / "first.log", 10)
    put(tree / "sub" / "old.log", 20)
    real_plan = housekeeper.plan
    swapped: list[str] = []

    def plan_then_swap(
        candidates: Iterable[Candidate], spec: CleanupSpec, now: datetime, default: float
    ) -> list[Deletion]:
        deletions = real_plan(candidates, spec, now, default)  # the scan is complete
        os.rename(tree / "sub", tree / "sub.moved")
        os.symlink(outside, tree / "sub")
        swapped.append("sub")
        return deletions

    monkeypatch.setattr(housekeeper, "plan", plan_then_swap)
    monkeypatch.setattr(housekeeper, "OPEN_DIRECTORIES", open_directories)
    report = run(policy(tree, recursive=True, max_files=0))
    assert swapped == ["sub"]
    assert (outside / "old.log").read_bytes() == b"x" * 7
    assert (tree / "sub").is_symlink()
    assert not (tree / "a" / "first.log").exists()  # the run went on
    if open_directories == 2:  # "sub" had to be opened again, and was refused
        assert (tree / "sub.moved" / "old.log").exists()
        assert report.deleted == 1
        assert any("sub/old.log" in e for e in report.errors), report.errors


@pytest.mark.parametrize("open_directories", [housekeeper.OPEN_DIRECTORIES, 2])
def test_subdirectory_replaced_by_another_directory_between_scan_and_delete(
    tree: Path, monkeypatch: pytest.MonkeyPatch, open_directories: int
) -> None:
    """A file that was never scanned is never deleted, even under the scanned name."""
    put(tree / "a" / "first.log", 10)
    put(tree / "sub" / "old.log", 20)
    real_plan = housekeeper.plan

    def plan_then_replace(
        candidates: Iterable[Candidate], spec: CleanupSpec, now: datetime, default: float
    ) -> list[Deletion]:
        deletions = real_plan(candidates, spec, now, default)
        os.rename(tree / "sub", tree / "sub.moved")
        put(tree / "sub" / "old.log", 20, 3)  # same name and age, another file
        return deletions

    monkeypatch.setattr(housekeeper, "plan", plan_then_replace)
    monkeypatch.setattr(housekeeper, "OPEN_DIRECTORIES", open_directories)
    report = run(policy(tree, recursive=True, max_files=0))
    assert (tree / "sub" / "old.log").read_bytes() == b"xxx"
    assert not (tree / "a" / "first.log").exists()
    if open_directories == 2:  # reopened: not the directory that was scanned
        expected = "cannot delete sub/old.log: directory was replaced during the cleanup"
        assert report.errors == [expected]


def test_file_replaced_between_scan_and_delete_is_kept_and_reported(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(tree / "old.log", 20)
    put(tree / "other.log", 20)
    real_plan = housekeeper.plan

    def plan_then_replace(
        candidates: Iterable[Candidate], spec: CleanupSpec, now: datetime, default: float
    ) -> list[Deletion]:
        deletions = real_plan(candidates, spec, now, default)
        os.rename(tree / "old.log", tree / "renamed.txt")  # keeps the scanned inode alive
        put(tree / "old.log", 20, 4)  # so this new file has another inode
        return deletions

    monkeypatch.setattr(housekeeper, "plan", plan_then_replace)
    report = run(policy(tree, max_files=0))
    assert (tree / "old.log").read_bytes() == b"xxxx"
    assert (tree / "renamed.txt").exists()
    assert not (tree / "other.log").exists()
    assert report.deleted == 1
    assert report.errors == ["old.log changed since the scan; kept"]


def test_file_recreated_with_a_reused_inode_is_kept(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ext4 hands a freed inode number to the next new file: identity by (device, inode)
    alone then takes a file that was never scanned for the one that was."""
    put(tree / "old.log", 20, 1)
    real_plan = housekeeper.plan
    reused: list[bool] = []

    def plan_then_recreate(
        candidates: Iterable[Candidate], spec: CleanupSpec, now: datetime, default: float
    ) -> list[Deletion]:
        deletions = real_plan(candidates, spec, now, default)
        (scanned,) = [d.candidate for d in deletions]
        os.unlink(tree / "old.log")
        with open(tree / "old.log", "wb") as out:  # a fresh file, written just now
            out.write(b"fresh data")
        reused.append(os.stat(tree / "old.log").st_ino == scanned.inode)
        return deletions

    monkeypatch.setattr(housekeeper, "plan", plan_then_recreate)
    report = run(policy(tree, max_files=0))
    if not reused[0]:
        pytest.skip("this file system did not reuse the inode number")
    assert (tree / "old.log").exists(), "a file created after the scan was deleted"
    assert report.deleted == 0


def test_subdirectory_swapped_between_stat_and_open(
    tree: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan stats "sub" (a directory), then it becomes a symlink before it is opened."""
    put(tree / "sub" / "old.log", 20)
    put(tree / "top.log", 20)
    real_stat = os.stat
    swapped: list[str] = []

    def stat_then_swap(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)
        if path == "sub" and kwargs.get("dir_fd") is not None and not swapped:
            os.rename(tree / "sub", tree / "sub.moved")
            os.symlink(outside, tree / "sub")
            swapped.append("sub")
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)
    report = run(policy(tree, recursive=True, retention_days=5))
    monkeypatch.undo()
    assert swapped == ["sub"]
    assert (outside / "old.log").exists()
    assert (tree / "sub.moved" / "old.log").exists()
    assert not (tree / "top.log").exists()
    assert any(e.startswith("cannot open sub") for e in report.errors), report.errors


def listing_then(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> None:
    """Call ``change`` once the first pass has listed the whole tree, before any file is
    looked at or deleted: the window an age limit has between listing and deleting."""
    real_listing = housekeeper._Tree.listing

    def listing_then_change(self: Any) -> list[tuple[str, list[str]]]:
        found = real_listing(self)
        change()
        return found

    monkeypatch.setattr(housekeeper._Tree, "listing", listing_then_change)


@pytest.mark.parametrize("open_directories", [housekeeper.OPEN_DIRECTORIES, 2])
def test_subdirectory_swapped_for_a_symlink_between_listing_and_deleting(
    tree: Path, outside: Path, monkeypatch: pytest.MonkeyPatch, open_directories: int
) -> None:
    put(tree / "a" / "first.log", 10)
    put(tree / "sub" / "old.log", 20)

    def swap() -> None:
        os.rename(tree / "sub", tree / "sub.moved")
        os.symlink(outside, tree / "sub")

    listing_then(monkeypatch, swap)
    monkeypatch.setattr(housekeeper, "OPEN_DIRECTORIES", open_directories)
    report = run(policy(tree, recursive=True, retention_days=5))
    assert (outside / "old.log").read_bytes() == b"x" * 7
    assert (tree / "sub").is_symlink()
    assert not (tree / "a" / "first.log").exists()  # the run went on
    if open_directories == 2:  # "sub" had to be opened again, and was refused
        assert (tree / "sub.moved" / "old.log").exists()
        assert report.deleted == 1
        assert [e for e in report.errors if e.startswith("cannot open sub: ")], report.errors


@pytest.mark.parametrize("open_directories", [housekeeper.OPEN_DIRECTORIES, 2])
def test_subdirectory_replaced_by_another_directory_between_listing_and_deleting(
    tree: Path, monkeypatch: pytest.MonkeyPatch, open_directories: int
) -> None:
    put(tree / "a" / "first.log", 10)
    put(tree / "sub" / "old.log", 20)

    def replace() -> None:
        os.rename(tree / "sub", tree / "sub.moved")
        put(tree / "sub" / "old.log", 20, 3)  # same name and age, a directory never listed

    listing_then(monkeypatch, replace)
    monkeypatch.setattr(housekeeper, "OPEN_DIRECTORIES", open_directories)
    report = run(policy(tree, recursive=True, retention_days=5))
    assert (tree / "sub" / "old.log").read_bytes() == b"xxx"
    assert not (tree / "a" / "first.log").exists()
    if open_directories == 2:
        assert report.errors == ["cannot open sub: directory was replaced during the cleanup"]


def test_a_file_replaced_after_listing_is_judged_by_what_it_is_then(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An age limit judges the file at its name when it looks, just before the unlink:
    a fresh file put in place of a listed old one is kept, and so is a symbolic link."""
    put(tree / "old.log", 20)
    put(tree / "linked.log", 20)
    put(tree / "other.log", 20)

    def replace() -> None:
        os.rename(tree / "old.log", tree / "renamed.txt")
        put(tree / "old.log", 1, 4)
        os.unlink(tree / "linked.log")
        os.symlink("renamed.txt", tree / "linked.log")
        age(tree / "linked.log", 20)  # the link itself is old

    listing_then(monkeypatch, replace)
    report = run(policy(tree, retention_days=5))
    assert listing(tree) == ["linked.log", "old.log", "renamed.txt"]
    assert (tree / "old.log").read_bytes() == b"xxxx"
    assert (tree / "linked.log").is_symlink()
    assert (report.scanned, report.matched, report.deleted, report.errors) == (3, 2, 1, [])


def test_a_file_vanishing_between_its_look_and_its_unlink_is_reported(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(tree / "gone.log", 20, 10)
    put(tree / "other.log", 30, 100)
    real_stat = os.stat

    def stat_then_vanish(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)
        if path == "gone.log" and kwargs.get("dir_fd") is not None:
            os.unlink(tree / "gone.log")
        return result

    monkeypatch.setattr(os, "stat", stat_then_vanish)
    report = run(policy(tree, retention_days=5))
    monkeypatch.undo()
    assert listing(tree) == []
    assert (report.deleted, report.bytes_freed) == (1, 100)  # the vanished file not counted
    assert report.errors == ["gone.log vanished before it was deleted"]


def test_only_files_past_the_age_limit_go_at_once_the_rest_by_the_plan(tree: Path) -> None:
    """Age, then count, then size, as one plan would: the files deleted at once for age
    leave the count and the size to the files that remain."""
    for day in (1, 2, 3, 4):
        put(tree / f"f{day}.log", day, 400_000)
    put(tree / "old.log", 10, 1)
    report = run(policy(tree, retention_days=5, max_files=3, max_size_mb=1))
    # age takes old.log; count keeps f1..f3; size keeps f1 and f2 (800 kB <= 1 MiB)
    assert listing(tree) == ["f1.log", "f2.log"]
    assert (report.matched, report.deleted, report.bytes_freed) == (5, 3, 800_001)
    dry = dry_run_of(tree, retention_days=5, max_files=1)
    assert dry == ["f2.log (count)"]


def dry_run_of(tree: Path, **fields: Any) -> list[str]:
    return run(policy(tree, **fields), dry_run=True).would_delete


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "directory", ["/", "/etc", "/usr/", "/var/lib", "/usr/../etc", "/tmp", "/home", "/root"]
)
def test_system_roots_are_refused_at_run_time(directory: str) -> None:
    report = run(policy(directory, pattern=NOTHING, max_files=0), dry_run=True)
    (error,) = report.errors
    assert "it is a system directory" in error
    assert report.scanned == 0


@pytest.mark.parametrize("directory", ["//", "//etc", "//usr/lib/"])
def test_system_roots_spelled_with_a_leading_double_slash_are_refused(directory: str) -> None:
    # os.path.normpath keeps a leading "//" (POSIX allows it): "//etc" is still /etc.
    report = run(policy(directory, pattern=NOTHING, max_files=0), dry_run=True)
    assert report.scanned == 0, "the system directory was scanned"
    assert any("system directory" in e for e in report.errors), report.errors


@pytest.mark.parametrize("target", ["etc", ""])
def test_a_system_root_reached_through_a_symlinked_parent_is_refused(
    tmp_path: Path, target: str
) -> None:
    # Not only the spelling: tmp/root/etc with tmp/root -> / is /etc.
    os.symlink("/", tmp_path / "root")
    directory = f"{tmp_path / 'root'}/{target}"
    report = run(policy(directory, pattern=NOTHING, max_files=0), dry_run=True)
    assert report.scanned == 0, "the system directory was scanned"
    assert report.errors


def test_the_runners_own_directories_are_refused_at_run_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    conf = tmp_path / "conf"
    put(data / "runner.db", 100)
    put(data / "old.log", 100)
    put(conf / "scheduler.yaml", 100)
    put(tmp_path / "old.log", 100)
    protected = [str(data / "runner.db"), str(conf / "scheduler.yaml")]
    refused = [
        policy(data, pattern="*", max_files=0),
        policy(conf, pattern="*", max_files=0),
        policy(tmp_path, pattern="*", max_files=0, recursive=True),  # reaches both
        policy(f"{data}/", pattern="*", max_files=0),
    ]
    for spec in refused:
        report = run(spec, protected=protected)
        (error,) = report.errors
        assert error.startswith(f"refusing to clean {os.path.normpath(spec.directory)}: ")
        assert "runner's own" in error
    assert (data / "runner.db").exists()
    assert (data / "old.log").exists()
    assert (conf / "scheduler.yaml").exists()
    # Above them without recursion, or beside them, is fine.
    assert run(policy(tmp_path, max_files=0), protected=protected).deleted == 1
    put(tmp_path / "logs" / "old.log", 100)
    report = run(policy(tmp_path / "logs", recursive=True, max_files=0), protected=protected)
    assert report.deleted == 1


def test_a_protected_directory_deep_in_the_tree_refuses_the_policy_before_any_deletion(
    tmp_path: Path, tree: Path, limit: dict[str, Any]
) -> None:
    """The whole tree is listed before anything goes: the old files of the directories
    listed before the one that holds a bind mount of the runner's own are kept too."""
    conf = tmp_path / "conf"
    put(conf / "scheduler.yaml", 100)
    put(tree / "a.log", 100)
    put(tree / "z" / "b.log", 100)
    protected = [str(conf / "scheduler.yaml")]
    with bind_mount(conf, tree / "z" / "m" / "view"):
        report = run(policy(tree, recursive=True, pattern="*", **limit), protected=protected)
    (error,) = report.errors
    assert error.startswith(f"refusing to clean {tree}: z/m/view: it holds the runner's own")
    assert listing(tree) == ["a.log", "z/", "z/b.log", "z/m/", "z/m/view/"]
    assert report.deleted == 0


def test_a_hard_link_to_the_runners_database_is_never_deleted(
    tmp_path: Path, tree: Path, limit: dict[str, Any]
) -> None:
    database = tmp_path / "data" / "runner.db"
    put(database, 100, 3)
    os.link(database, tree / "copy.db")
    put(tree / "old.db", 100)
    report = run(policy(tree, pattern="*.db", **limit), protected=[str(database)])
    assert listing(tree) == ["copy.db"]
    assert (report.matched, report.deleted, report.errors) == (1, 1, [])


def validation_errors(tmp_path: Path, cleanup: str, settings: str = "") -> list[str]:
    path = tmp_path / "scheduler.yaml"
    path.write_text(textwrap.dedent(settings) + "cleanup:\n" + textwrap.dedent(cleanup))
    report = configs.validate([path], {}, NOW)
    return [p.message for p in report.errors]


@pytest.mark.parametrize("directory", ["/", "/etc", "/usr/", "/var/lib", "//", "//etc"])
def test_system_roots_are_config_errors(tmp_path: Path, directory: str) -> None:
    # "//" and "//etc" fail today: the same normpath bug as at run time.
    found = validation_errors(
        tmp_path, f"  - {{name: c, directory: '{directory}', max_files: 1}}\n"
    )
    assert [m for m in found if "it is a system directory" in m] == found, found
    assert len(found) == 1, found


def test_the_runners_own_directories_are_config_errors(tmp_path: Path) -> None:
    found = validation_errors(
        tmp_path,
        f"""\
          - {{name: db, directory: {tmp_path}/data, max_files: 1}}
          - {{name: config, directory: ., max_files: 1}}
          - {{name: fine, directory: {tmp_path}/logs, recursive: true, max_files: 1}}
          - {{name: above, directory: {tmp_path.parent}, recursive: true, max_files: 1}}
          - {{name: flat, directory: {tmp_path.parent}, max_files: 1}}
        """,
        f'settings: {{database: "sqlite:///{tmp_path}/data/runner.db"}}\n',
    )
    assert len(found) == 3, found
    assert "runner.db" in found[0]
    assert "scheduler.yaml" in found[1]
    assert f"refusing to clean {tmp_path.parent}: " in found[2]


def test_own_files_reached_through_a_symlink_in_a_middle_component_are_refused(
    tmp_path: Path,
) -> None:
    """Issue 10.1: with t/up -> t, "t/up/app" is t/app, where the database and config are."""
    t, app = tmp_path / "t", tmp_path / "t" / "app"
    own = ["runner.db", "runner.db-wal", "runner.db-shm", "scheduler.yaml", "old.log"]
    for name in own:
        put(app / name, 100)
    os.symlink(t, t / "up")
    protected = [str(app / "scheduler.yaml"), str(app / "runner.db")]
    for recursive, directory in [(False, t / "up" / "app"), (True, t / "up")]:
        spec = policy(directory, pattern="*", max_files=0, recursive=recursive)
        report = run(spec, protected=protected)
        (error,) = report.errors
        assert "runner's own" in error, error
        assert sorted(os.listdir(app)) == sorted(own)


def test_own_files_reached_through_a_symlink_in_a_middle_component_are_config_errors(
    tmp_path: Path,
) -> None:
    t, app = tmp_path / "t", tmp_path / "t" / "app"
    app.mkdir(parents=True)
    os.symlink(t, t / "up")
    config = app / "scheduler.yaml"
    config.write_text(
        f'settings: {{database: "sqlite:///{app}/runner.db"}}\n'
        'cleanup:\n  - {name: c, directory: ../up/app, pattern: "*", max_files: 0}\n'
    )
    (error,) = configs.validate([config], {}, NOW).errors
    assert error.message.startswith(
        f"refusing to clean {t / 'up' / 'app'}: it holds the runner's own"
    )
    assert (error.line, error.path) == (3, "cleanup[0].directory")


@contextlib.contextmanager
def mounted(where: Path, *how: str) -> Iterator[None]:
    """``mount HOW WHERE`` for the block; the test is skipped where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", *how, str(where)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        pytest.skip("no mount command: cannot test mount points")
    if done.returncode != 0:
        pytest.skip(f"cannot mount (needs root with CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)


def bind_mount(source: Path, target: Path) -> contextlib.AbstractContextManager[None]:
    return mounted(target, "--bind", str(source))


def test_own_directory_bind_mounted_into_a_policy_directory_is_refused(tmp_path: Path) -> None:
    """The paths differ, the directory is the same: refused by device and inode."""
    conf = tmp_path / "conf"
    put(conf / "scheduler.yaml", 100)
    put(conf / "runner.db", 100)
    protected = [str(conf / "scheduler.yaml"), str(conf / "runner.db")]
    with bind_mount(conf, tmp_path / "view"):
        report = run(policy(tmp_path / "view", pattern="*", max_files=0), protected=protected)
    (error,) = report.errors
    reason = f"it holds the runner's own {conf / 'scheduler.yaml'}"
    assert error == f"refusing to clean {tmp_path / 'view'}: {reason}"
    assert sorted(os.listdir(conf)) == ["runner.db", "scheduler.yaml"]


def test_bind_mounts_of_the_same_file_system_are_not_crossed(
    tmp_path: Path, tree: Path, limit: dict[str, Any]
) -> None:
    """Issue 10.11: a bind mount keeps st_dev; it is still another mount, and skipped."""
    elsewhere = tmp_path / "elsewhere"
    put(elsewhere / "old.log", 100)
    put(elsewhere / "deeper" / "old.log", 100)
    put(tree / "old.log", 100)
    with bind_mount(elsewhere, tree / "view"):
        assert os.stat(tree / "view").st_dev == os.stat(tree).st_dev
        report = run(policy(tree, recursive=True, **limit))
        assert (tree / "view" / "old.log").exists()
    assert (elsewhere / "old.log").exists()
    assert (elsewhere / "deeper" / "old.log").exists()
    assert not (tree / "old.log").exists()
    assert (report.scanned, report.deleted, report.errors) == (1, 1, [])


def test_a_policy_directory_that_is_a_bind_mount_is_cleaned(tmp_path: Path, tree: Path) -> None:
    put(tree / "sub" / "old.log", 100)
    with bind_mount(tree, tmp_path / "view"):
        report = run(policy(tmp_path / "view", recursive=True, max_files=0))
    assert (report.deleted, report.errors) == (1, [])
    assert listing(tree) == ["sub/"]


def make_deep_tree(root: Path, depth: int) -> None:
    """``root/d/d/.../d``, ``depth`` levels, an old ``old.log`` in each (paths beyond
    PATH_MAX, so built through directory descriptors)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    when = NOW.timestamp() - 100 * DAY
    try:
        for _ in range(depth):
            os.close(os.open("old.log", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
            os.utime("old.log", (when, when), dir_fd=fd)
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def remove_deep_tree(root: Path) -> None:
    """Undo :func:`make_deep_tree` once its files are gone, without deep paths or recursion
    (shutil.rmtree recurses): pull each level up and remove the empty one above it."""
    while (root / "d").exists():
        if (root / "d" / "d").exists():
            os.rename(root / "d" / "d", root / "next")
        for name in os.listdir(root / "d"):
            os.unlink(root / "d" / name)
        os.rmdir(root / "d")
        if (root / "next").exists():
            os.rename(root / "next", root / "d")


def test_a_tree_thousands_of_levels_deep_is_cleaned(tree: Path, limit: dict[str, Any]) -> None:
    """Issue 10.9: no recursion (it died with RecursionError after 62 deletions)."""
    make_deep_tree(tree, 3000)
    try:
        report = run(policy(tree, recursive=True, **limit))
        assert (report.deleted, report.errors) == (3000, [])
        assert run(policy(tree, recursive=True, **limit), dry_run=True).scanned == 0
    finally:
        remove_deep_tree(tree)


def test_bytes_freed_leaves_out_files_with_another_hard_link(
    tree: Path, tmp_path: Path, limit: dict[str, Any]
) -> None:
    """Deleting one name of a hard-linked file frees nothing; it is deleted, not counted."""
    put(tree / "single.log", 100, 10)
    put(tree / "linked.log", 100, 1000)
    os.link(tree / "linked.log", tmp_path / "other-name")
    dry = run(policy(tree, **limit), dry_run=True)
    report = run(policy(tree, **limit))
    assert (dry.deleted, dry.bytes_freed) == (2, 10)
    assert (report.deleted, report.bytes_freed) == (2, 10)
    assert listing(tree) == []
    assert (tmp_path / "other-name").stat().st_size == 1000


# --- one file system, special files -----------------------------------------------------------


def tmpfs(where: Path) -> contextlib.AbstractContextManager[None]:
    return mounted(where, "-t", "tmpfs", "-o", "size=1m", "tmpfs")


def test_mount_points_are_not_crossed(tree: Path, limit: dict[str, Any]) -> None:
    put(tree / "old.log", 100)
    with tmpfs(tree / "mnt"):
        put(tree / "mnt" / "old.log", 100)
        put(tree / "mnt" / "deeper" / "old.log", 100)
        report = run(policy(tree, recursive=True, **limit))
        assert (tree / "mnt" / "old.log").exists()
        assert (tree / "mnt" / "deeper" / "old.log").exists()
    assert not (tree / "old.log").exists()
    assert (report.scanned, report.deleted, report.errors) == (1, 1, [])


def test_a_policy_directory_that_is_a_mount_point_is_cleaned(tree: Path) -> None:
    with tmpfs(tree / "mnt"):
        put(tree / "mnt" / "sub" / "old.log", 100)
        report = run(policy(tree / "mnt", recursive=True, max_files=0))
        assert listing(tree / "mnt") == ["sub/"]
    assert report.deleted == 1


def test_fifos_and_sockets_are_skipped_without_opening(
    tree: Path, monkeypatch: pytest.MonkeyPatch, limit: dict[str, Any]
) -> None:
    os.mkfifo(tree / "x.log")
    monkeypatch.chdir(tree)  # a short relative path for the socket (108-byte limit)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("s.log")
    try:
        put(tree / "plain.log", 100)
        for name in ("x.log", "s.log"):
            age(tree / name, 100)
        spec = policy(tree, **limit)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(run, spec)
            try:
                report = future.result(timeout=10)
            except TimeoutError:
                # It opened the FIFO and is blocked: a writer releases it, then fail.
                os.close(os.open(tree / "x.log", os.O_WRONLY | os.O_NONBLOCK))
                pytest.fail("the cleanup opened a FIFO and blocked")
    finally:
        server.close()
    assert stat.S_ISFIFO(os.lstat(tree / "x.log").st_mode)
    assert stat.S_ISSOCK(os.lstat(tree / "s.log").st_mode)
    assert not (tree / "plain.log").exists()
    assert (report.scanned, report.matched, report.deleted) == (1, 1, 1)
    assert report.errors == []


def test_device_files_are_skipped(tree: Path) -> None:
    try:
        os.mknod(tree / "null.log", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot create a device node here")
    age(tree / "null.log", 100)
    report = run(policy(tree, max_files=0))
    assert stat.S_ISCHR(os.lstat(tree / "null.log").st_mode)
    assert (report.scanned, report.deleted, report.errors) == (0, 0, [])


# --- hostile names ----------------------------------------------------------------------------

HOSTILE = [
    b"new\nline.log",
    b"bad-\xff\xfe.log",
    b"x" * 251 + b".log",  # 255 bytes, the longest name
    "\u00e9".encode() * 125 + b".log",  # 254 bytes of UTF-8
    b"\x1b[31mred.log",  # a terminal escape
    b"tab\there.log",
    b" -rf .log",
]


def printable(text: str) -> bool:
    """Printable, one line, and encodable as strict UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return text.isprintable()


def test_hostile_names_are_reported_printably_in_a_dry_run(tree: Path) -> None:
    base = os.fsencode(tree)
    for name in HOSTILE:
        put(os.path.join(base, name), 100, 1)
    report = run(policy(tree, max_files=0), dry_run=True)
    assert sorted(os.listdir(base)) == sorted(HOSTILE)
    assert report.deleted == len(HOSTILE)
    assert all(printable(entry) for entry in report.would_delete), report.would_delete
    assert "new\\nline.log (count)" in report.would_delete
    assert "bad-\\xff\\xfe.log (count)" in report.would_delete
    assert f"{'x' * 251}.log (count)" in report.would_delete
    assert f"{chr(0xE9) * 125}.log (count)" in report.would_delete


def test_hostile_names_are_deleted(tree: Path, limit: dict[str, Any]) -> None:
    base = os.fsencode(tree)
    for name in HOSTILE:
        put(os.path.join(base, name), 100, 1)
    put(os.path.join(base, b"keep-\xff\n.txt"), 100, 1)
    put(os.path.join(base, b"sub", b"deep\n\xff.log"), 100, 1)
    report = run(policy(tree, **limit, recursive=True))
    assert report.errors == []
    assert report.deleted == len(HOSTILE) + 1
    assert sorted(os.listdir(base)) == [b"keep-\xff\n.txt", b"sub"]
    assert os.listdir(os.path.join(base, b"sub")) == []


def test_errors_about_hostile_names_are_printable(
    tree: Path, monkeypatch: pytest.MonkeyPatch, limit: dict[str, Any]
) -> None:
    base = os.fsencode(tree)
    for name in HOSTILE:
        put(os.path.join(base, name), 100, 1)
    real_unlink = os.unlink

    def refuse(path: Any, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "unlink", refuse)
    report = run(policy(tree, **limit))
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert len(report.errors) == len(HOSTILE)
    assert all(printable(e) for e in report.errors), report.errors
    assert "cannot delete new\\nline.log: Permission denied" in report.errors


# --- problems are reported, and the run goes on ------------------------------------------------


def test_a_missing_directory_is_reported_not_raised(tmp_path: Path) -> None:
    report = run(policy(tmp_path / "missing", max_files=0))
    assert report.errors == [f"cannot open {tmp_path / 'missing'}: No such file or directory"]
    assert (report.scanned, report.deleted) == (0, 0)


def test_a_policy_directory_that_is_a_file_is_reported(tmp_path: Path) -> None:
    put(tmp_path / "file.log", 100)
    report = run(policy(tmp_path / "file.log", max_files=0))
    assert len(report.errors) == 1
    assert "cannot open" in report.errors[0]
    assert (tmp_path / "file.log").exists()


def vanish_after_planning(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    real_plan = housekeeper.plan

    def plan_then_vanish(
        candidates: Iterable[Candidate], spec: CleanupSpec, now: datetime, default: float
    ) -> list[Deletion]:
        deletions = real_plan(candidates, spec, now, default)
        os.unlink(victim)
        return deletions

    monkeypatch.setattr(housekeeper, "plan", plan_then_vanish)


def test_a_file_vanishing_between_scan_and_delete_does_not_stop_the_run(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(tree / "gone.log", 20, 10)
    put(tree / "other.log", 30, 100)
    vanish_after_planning(monkeypatch, tree / "gone.log")
    report = run(policy(tree, max_files=0))
    assert listing(tree) == []
    assert (report.deleted, report.bytes_freed) == (1, 100)  # the vanished file is not counted


def test_a_file_vanishing_between_scan_and_delete_is_reported(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a file vanishing during the scan is ("cannot stat"): nothing goes unreported.
    put(tree / "gone.log", 20, 10)
    put(tree / "other.log", 30, 100)
    vanish_after_planning(monkeypatch, tree / "gone.log")
    report = run(policy(tree, max_files=0))
    assert any("gone.log" in e for e in report.errors), report.errors


def test_a_file_vanishing_during_the_scan_is_reported(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(tree / "gone.log", 20)
    put(tree / "other.log", 20)
    real_scandir = os.scandir

    def scandir_then_vanish(path: Any) -> Iterator[os.DirEntry[Any]]:
        entries = list(real_scandir(path))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tree / "gone.log")
        return iter(entries)

    monkeypatch.setattr(os, "scandir", scandir_then_vanish)
    report = run(policy(tree, retention_days=5))
    monkeypatch.undo()
    assert report.errors == ["cannot stat gone.log: No such file or directory"]
    assert report.deleted == 1
    assert listing(tree) == []


def test_an_immutable_file_is_a_permission_error_and_the_run_goes_on(
    tree: Path, limit: dict[str, Any]
) -> None:
    put(tree / "locked.log", 100, 5)
    put(tree / "free.log", 100, 7)
    try:
        done = subprocess.run(["chattr", "+i", str(tree / "locked.log")], capture_output=True)
    except FileNotFoundError:
        pytest.skip("no chattr command")
    if done.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {done.stderr.strip()!r}")
    try:
        report = run(policy(tree, **limit))
        assert (tree / "locked.log").exists()
    finally:
        subprocess.run(["chattr", "-i", str(tree / "locked.log")], check=True)
    assert not (tree / "free.log").exists()
    assert (report.deleted, report.bytes_freed) == (1, 7)
    assert report.errors == ["cannot delete locked.log: Operation not permitted"]


def test_a_permission_error_on_unlink_is_reported_and_the_run_goes_on(
    tree: Path, monkeypatch: pytest.MonkeyPatch, limit: dict[str, Any]
) -> None:
    for name in ("a.log", "b.log", "c.log"):
        put(tree / name, 100, 1)
    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if path == "b.log":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    report = run(policy(tree, **limit))
    monkeypatch.undo()
    assert listing(tree) == ["b.log"]
    assert report.errors == ["cannot delete b.log: Permission denied"]
    assert report.deleted == 2


def test_an_unreadable_subdirectory_is_reported_and_the_run_goes_on(
    tree: Path, monkeypatch: pytest.MonkeyPatch, limit: dict[str, Any]
) -> None:
    put(tree / "locked" / "old.log", 100)
    put(tree / "open" / "old.log", 100)
    locked = os.stat(tree / "locked").st_ino
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if isinstance(path, int) and os.fstat(path).st_ino == locked:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = run(policy(tree, recursive=True, **limit))
    monkeypatch.undo()
    assert report.errors == ["cannot list locked: Permission denied"]
    assert (tree / "locked" / "old.log").exists()
    assert not (tree / "open" / "old.log").exists()


# --- dry runs ---------------------------------------------------------------------------------


def dry_tree(tree: Path) -> None:
    put(tree / "new.log", 1, 1)
    put(tree / "old.log", 50, 10)
    put(tree / "older.log", 60, 100)


@pytest.mark.parametrize("where", ["argument", "policy"])
def test_a_dry_run_deletes_nothing_and_reports_what_would_go(tree: Path, where: str) -> None:
    dry_tree(tree)
    spec = policy(tree, retention_days=7, dry_run=where == "policy")
    report = run(spec, dry_run=where == "argument")
    assert listing(tree) == ["new.log", "old.log", "older.log"]
    assert report.dry_run
    assert (report.scanned, report.matched, report.deleted, report.bytes_freed) == (3, 3, 2, 110)
    assert report.would_delete == ["old.log (age)", "older.log (age)"]
    real = run(policy(tree, retention_days=7))
    assert (real.deleted, real.bytes_freed) == (report.deleted, report.bytes_freed)
    assert listing(tree) == ["new.log"]


# --- priority and concurrency -----------------------------------------------------------------


def specs_by_priority() -> list[CleanupSpec]:
    return [
        policy("/srv/c", name="c", priority=5),
        policy("/srv/a", name="a", priority=10),
        policy("/srv/b", name="b", priority=5),
        policy("/srv/off", name="off", priority=1, enabled=False),
        policy("/srv/z", name="z", priority=-1),
        policy("/srv/d", name="d"),
    ]


async def test_policies_run_in_priority_order(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    def fake_clean(
        spec: CleanupSpec, now: datetime, default: float, dry_run: bool, protected: Any
    ) -> Report:
        started.append(spec.name)
        return Report(spec.name, spec.directory, dry_run)

    monkeypatch.setattr(housekeeper, "clean", fake_clean)
    reports = await clean_all(specs_by_priority(), NOW, 30, False, 1)
    assert started == ["z", "b", "c", "a", "d"]
    assert [r.policy for r in reports] == ["z", "b", "c", "a", "d"]


@pytest.mark.parametrize("concurrency", [2, 3])
async def test_policies_run_in_parallel_threads_up_to_the_limit(
    monkeypatch: pytest.MonkeyPatch, concurrency: int
) -> None:
    specs = [policy(f"/srv/{i}", name=f"p{i}", priority=i) for i in range(7)]
    state = {"active": 0, "peak": 0, "started": 0}
    started: list[str] = []
    changed = threading.Condition()

    def fake_clean(
        spec: CleanupSpec, now: datetime, default: float, dry_run: bool, protected: Any
    ) -> Report:
        with changed:
            state["active"] += 1
            state["started"] += 1
            state["peak"] = max(state["peak"], state["active"])
            started.append(spec.name)
            changed.notify_all()
            # Hold on until the gate is full (or nothing else can start): without a limit,
            # more would pile in; with a limit of one, this would time out.
            changed.wait_for(
                lambda: state["active"] >= concurrency or state["started"] == len(specs), 5
            )
            state["active"] -= 1
            changed.notify_all()
        return Report(spec.name, spec.directory, dry_run)

    monkeypatch.setattr(housekeeper, "clean", fake_clean)
    reports = await clean_all(specs, NOW, 30, False, concurrency)
    assert state["peak"] == concurrency
    assert set(started[:concurrency]) == {f"p{i}" for i in range(concurrency)}
    assert [r.policy for r in reports] == [f"p{i}" for i in range(7)]


async def test_the_concurrency_limit_holds_at_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Policies held in their thread one by one: at each step, exactly the allowed number
    is running, and the next one in priority order starts only when one finishes."""
    specs = [policy(f"/srv/{i}", name=f"p{i}", priority=i) for i in range(6)]
    running: dict[str, asyncio.Event] = {}

    async def held(function: Any, spec: CleanupSpec, *args: Any) -> Report:
        running[spec.name] = asyncio.Event()
        await running[spec.name].wait()
        del running[spec.name]
        return Report(spec.name, spec.directory, False)

    async def settle() -> None:
        for _ in range(20):  # let every task that can start do so (no timing involved)
            await asyncio.sleep(0)

    monkeypatch.setattr(asyncio, "to_thread", held)
    task = asyncio.create_task(clean_all(specs, NOW, 30, False, 2))
    expected = [["p0", "p1"], ["p1", "p2"], ["p2", "p3"], ["p3", "p4"], ["p4", "p5"], ["p5"]]
    for step in expected:
        await settle()
        assert sorted(running) == step
        running[step[0]].set()
    reports = await task
    assert [r.policy for r in reports] == [f"p{i}" for i in range(6)]


async def test_clean_all_cleans_real_trees_in_parallel(tmp_path: Path) -> None:
    specs = []
    for i in range(4):
        put(tmp_path / f"t{i}" / "old.log", 100, i)
        put(tmp_path / f"t{i}" / "new.log", 1, 1)
        specs.append(policy(tmp_path / f"t{i}", name=f"t{i}", retention_days=7, priority=-i))
    specs.append(policy(tmp_path / "missing", name="missing", retention_days=7, priority=50))
    reports = await clean_all(specs, NOW, 30, False, 2)
    assert [r.policy for r in reports] == ["t3", "t2", "t1", "t0", "missing"]
    assert [r.bytes_freed for r in reports] == [3, 2, 1, 0, 0]
    assert [len(r.errors) for r in reports] == [0, 0, 0, 0, 1]
    assert all(listing(tmp_path / f"t{i}") == ["new.log"] for i in range(4))


# --- with the store: reports and last_run ------------------------------------------------------


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    store = await Store.open(db_url)
    yield store
    await store.close()


async def last_runs(store: Store) -> dict[str, Any]:
    query = select(
        cleanup_configs.c.name, cleanup_configs.c.last_run, cleanup_configs.c.last_report
    )
    async with store.engine.connect() as conn:
        return {row.name: (row.last_run, row.last_report) for row in await conn.execute(query)}


async def test_run_housekeeping_stores_reports_and_last_run(store: Store, tree: Path) -> None:
    put(tree / "old.log", 100, 10)
    put(tree / "new.log", 1, 1)
    await store.register_cleanup(policy(tree, retention_days=7), NOW)
    await store.register_cleanup(policy(tree / "missing", name="gone", max_files=1), NOW)
    policies = await store.cleanup_policies()
    reports = await run_housekeeping(store, policies, Settings(), NOW, "test:1")
    assert [r.policy for r in reports] == ["gone", "logs"]
    rows = {row["policy"]: row for row in await store.cleanup_reports()}
    logs = rows["logs"]
    assert (logs["scanned"], logs["matched"], logs["deleted"], logs["bytes_freed"]) == (2, 2, 1, 10)
    assert logs["errors"] == []
    assert logs["dry_run"] is False
    assert logs["runner_id"] == "test:1"
    assert logs["directory"] == str(tree)
    assert logs["started_at"] == NOW
    assert logs["duration"] >= 0
    assert len(rows["gone"]["errors"]) == 1
    runs = await last_runs(store)
    assert runs["logs"][0] == NOW
    assert runs["gone"][0] == NOW
    assert runs["logs"][1]["deleted"] == 1
    assert listing(tree) == ["new.log"]


async def test_the_global_dry_run_setting_deletes_nothing(store: Store, tree: Path) -> None:
    put(tree / "old.log", 100, 10)
    settings = Settings(housekeeper=HousekeeperSettings(dry_run=True))
    (report,) = await run_housekeeping(
        store, [policy(tree, retention_days=7)], settings, NOW, "test:1"
    )
    assert listing(tree) == ["old.log"]
    assert report.dry_run
    assert report.deleted == 1
    (row,) = await store.cleanup_reports()
    assert row["dry_run"] is True
    assert row["would_delete"] == ["old.log (age)"]


async def test_reports_are_not_stored_when_disabled(store: Store, tree: Path) -> None:
    put(tree / "old.log", 100, 10)
    settings = Settings(housekeeper=HousekeeperSettings(report_enabled=False))
    await run_housekeeping(store, [policy(tree, retention_days=7)], settings, NOW, "test:1")
    assert listing(tree) == []
    assert await store.cleanup_reports() == []


async def test_the_runner_starts_housekeeping_on_its_schedule(store: Store, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    data = tmp_path / "data"
    put(tree / "old.log", 100, 10)
    put(data / "runner.db", 100)
    await store.register_cleanup(policy(tree, retention_days=7), NOW)
    await store.register_cleanup(policy(data, name="own", pattern="*", max_files=0), NOW)
    settings = Settings(housekeeper=HousekeeperSettings(schedule="0 3 * * *"))
    clock = FakeClock(datetime(2027, 2, 1, 2, 59, 30, tzinfo=UTC))
    runner = Runner(
        store, settings, clock, runner_id="test:1", protected_files=[str(data / "runner.db")]
    )
    await runner.upkeep()
    assert runner.housekeeping is None  # not yet 03:00
    clock.advance(30)
    await runner.upkeep()
    assert runner.housekeeping is not None
    reports = await runner.housekeeping
    assert {r.policy: r.deleted for r in reports} == {"logs": 1, "own": 0}
    assert "runner's own" in next(r for r in reports if r.policy == "own").errors[0]
    assert (data / "runner.db").exists()
    assert not (tree / "old.log").exists()
    assert len(await store.cleanup_reports()) == 2
    first = runner.housekeeping
    clock.advance(3600)  # the next run is tomorrow at 03:00
    await runner.upkeep()
    assert runner.housekeeping is first
    clock.set(datetime(2027, 2, 2, 3, 0, tzinfo=UTC) + timedelta(seconds=1))
    await runner.upkeep()
    assert runner.housekeeping is not first
    await runner.housekeeping


async def test_disabled_housekeeping_never_starts(store: Store, tree: Path) -> None:
    put(tree / "old.log", 100)
    await store.register_cleanup(policy(tree, retention_days=7), NOW)
    settings = Settings(housekeeper=HousekeeperSettings(enabled=False, schedule="* * * * *"))
    clock = FakeClock(NOW)
    runner = Runner(store, settings, clock, runner_id="test:1")
    for _ in range(3):
        await runner.upkeep()
        clock.advance(120)
    assert runner.housekeeping is None
    assert (tree / "old.log").exists()
