"""The paths no cleanup may reach, judged on paths (validation) and identities (run time)."""

from __future__ import annotations

import os
from pathlib import Path

from runner import safety
from runner.specs import CleanupSpec


def test_own_files_are_the_config_files_and_the_database_with_its_journals(
    tmp_path: Path,
) -> None:
    files = safety.own_files(["conf/a.yaml"], f"sqlite:///{tmp_path}/r.db?timeout=5")
    assert files == [
        "conf/a.yaml",
        f"{tmp_path}/r.db",
        f"{tmp_path}/r.db-wal",
        f"{tmp_path}/r.db-shm",
        f"{tmp_path}/r.db-journal",
    ]
    assert safety.own_files(["a.yaml"], "postgresql://h/d") == ["a.yaml"]


def test_a_directory_is_judged_as_written_and_resolved(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    os.symlink(tmp_path, tmp_path / "up")
    protected = [str(tmp_path / "app" / "runner.db")]
    via_link = CleanupSpec(name="c", directory=str(tmp_path / "up" / "app"))
    beside = CleanupSpec(name="c", directory=str(tmp_path / "up" / "logs"))
    assert safety.unsafe_directory(via_link, protected) == (
        f"refusing to clean {tmp_path}/up/app: it holds the runner's own {protected[0]}"
    )
    assert safety.unsafe_directory(beside, protected) is None


def test_the_fence_knows_directories_by_identity(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a.yaml").write_text("")
    fence = safety.Fence.around([str(tmp_path / "app" / "a.yaml"), str(tmp_path / "gone.db")])
    app, etc, here = (os.stat(p) for p in (tmp_path / "app", "/etc", tmp_path))
    assert fence.refusal((app.st_dev, app.st_ino)) == (
        f"it holds the runner's own {tmp_path / 'app' / 'a.yaml'}"
    )
    assert fence.refusal((etc.st_dev, etc.st_ino)) == "it is a system directory"
    # A missing file's directory is fenced: the file may appear later (a -wal does).
    assert fence.refusal((here.st_dev, here.st_ino)) == (
        f"it holds the runner's own {tmp_path / 'gone.db'}"
    )


def test_a_directory_with_a_nul_character_is_refused_not_raised() -> None:
    spec = CleanupSpec(name="nul", directory="/srv/logs\0/x")
    assert safety.unsafe_directory(spec, []) == "a directory name cannot contain a NUL character"


def test_a_directory_no_file_system_call_could_take_is_refused_not_raised() -> None:
    spec = CleanupSpec(name="bad", directory="/srv/\udb17logs")
    refusal = safety.unsafe_directory(spec, [])
    assert refusal == "a directory name cannot contain unpaired surrogate characters"
