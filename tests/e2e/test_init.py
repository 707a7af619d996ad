"""As a container's PID 1 (forced here with RUNNER_INIT=1), the runner reaps orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import wait_for


def children(pid: int) -> list[tuple[str, str]]:
    """(command name, state) of the direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        state, parent = rest.split()[:2]
        if int(parent) == pid:
            found.append((name, state))
    return found


def test_orphans_are_adopted_and_reaped_and_signals_forwarded(tmp_path: Path) -> None:
    marker = tmp_path / "orphans"
    script = f"(sleep 1.5; echo $$ >> {marker}) & exit 0"  # the background job is orphaned
    (tmp_path / "scheduler.yaml").write_text(
        "settings: {database: 'sqlite:///runner.db', shutdown_grace: 1}\n"
        "events:\n"
        f"  - {{name: orphan, command: ['sh', '-c', '{script}'], schedule: {{every: 1s}}}}\n"
    )
    environ = {**os.environ, "RUNNER_INIT": "1"}
    command = [sys.executable, "-m", "runner", "run", "--log-format", "json"]
    init = subprocess.Popen(command, cwd=tmp_path, env=environ, stderr=subprocess.DEVNULL)
    try:
        # The orphaned job is adopted by the init process (as by PID 1) ...
        wait_for(lambda: [c for c in children(init.pid) if c[0] == "sh"], timeout=20)
        # ... and reaped when it ends: several have come and gone, no zombie is left.
        wait_for(lambda: marker.exists() and len(marker.read_text().split()) >= 3, timeout=20)
        # (A zombie may exist for a moment between an exit and its reaping, never longer.)
        wait_for(lambda: "Z" not in [state for _, state in children(init.pid)], timeout=5)
        init.send_signal(signal.SIGTERM)  # forwarded to the runner, which stops cleanly
        assert init.wait(15) == 0
    finally:
        if init.poll() is None:
            init.kill()
            init.wait()
