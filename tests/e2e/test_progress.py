"""Progress on a terminal for ``runner apply`` and ``runner cleanup``; not a byte of it
when stderr is not one (CI, pipes, log files)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import CLI_TIMEOUT, controlled_environ

CONFIG = """\
settings: {database: "sqlite:///r.db"}
events:
  - {name: heartbeat, command: ["true"], schedule: {every: 1m}}
cleanup:
  - {name: scratch, directory: scratch, pattern: "*.tmp", max_files: 0}
"""


def runner(cwd: Path, *args: str, terminal: bool) -> tuple[int, str, str]:
    """Run ``runner ARGS``; stderr on a pseudo-terminal when ``terminal``, else a pipe.
    Returns the exit status, stdout and stderr."""
    environ = {**controlled_environ(cwd), "TERM": "xterm", "COLUMNS": "100"}
    command = [sys.executable, "-m", "runner", *args]
    if not terminal:
        done = subprocess.run(
            command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=CLI_TIMEOUT
        )
        return done.returncode, done.stdout, done.stderr
    controller, device = pty.openpty()
    with subprocess.Popen(
        command, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=device, text=True
    ) as process:
        os.close(device)
        stdout, _ = process.communicate(timeout=CLI_TIMEOUT)
    drawn = b""
    while select.select([controller], [], [], 0.2)[0]:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the other side is closed: all is read
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    return process.returncode, stdout, drawn.decode(errors="replace")


def test_apply_and_cleanup_show_progress_on_a_terminal_only(tmp_path: Path) -> None:
    (tmp_path / "scheduler.yaml").write_text(CONFIG)
    (tmp_path / "scratch").mkdir()
    for index in range(50):
        (tmp_path / "scratch" / f"{index}.tmp").write_text("x")

    code, stdout, drawn = runner(tmp_path, "apply", terminal=True)
    assert code == 0
    assert "applying 1 events, 1 policies" in drawn
    assert stdout.splitlines()[-1].startswith("Applied: 2 to create")

    code, stdout, drawn = runner(tmp_path, "cleanup", "--dry-run", terminal=True)
    assert code == 0
    assert "cleaning" in drawn
    assert "1/1" in drawn
    assert "scratch (dry run)  50" in stdout

    code, quiet, stderr = runner(tmp_path, "cleanup", "--dry-run", terminal=False)
    assert (code, stderr) == (0, "")
    assert quiet.splitlines()[0] == stdout.splitlines()[0]
    (tmp_path / "scheduler.yaml").write_text(CONFIG.replace("1m", "5m"))
    code, stdout, stderr = runner(tmp_path, "apply", terminal=False)
    assert (code, stderr) == (0, "")
    assert stdout.splitlines()[0] == "~ update event heartbeat: schedule"
