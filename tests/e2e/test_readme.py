"""The README's first command starts a scheduler, and its five-minute tour does what its
comments say, run line by line against the default config."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import CLI_TIMEOUT, controlled_environ, wait_for

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def tour() -> list[tuple[str, str]]:
    """The tour's lines: (shell command, what its comment says)."""
    block = README.split("## Five minutes with it", 1)[1].split("```sh\n", 1)[1]
    lines = block.split("```", 1)[0].strip().splitlines()
    return [(line.partition("#")[0].strip(), line.partition("#")[2].strip()) for line in lines]


def test_the_first_command_runs_the_scheduler_and_the_tour_is_true(tmp_path: Path) -> None:
    first = re.search(r"python3 -m venv .venv && (.*)\n", README)
    assert first is not None
    assert first.group(1).endswith("&& .venv/bin/runner run")
    shutil.copy(ROOT / "scheduler.yaml", tmp_path / "scheduler.yaml")
    bin_dir = Path(sys.executable).parent
    environ = {**controlled_environ(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    log = tmp_path / "run.log"
    with log.open("wb") as sink:
        run = subprocess.Popen(["runner", "run"], cwd=tmp_path, env=environ, stderr=sink)
    try:
        wait_for(lambda: "runner started" in log.read_text() or run.poll() is not None, 30)
        assert run.poll() is None, log.read_text()
        run.send_signal(signal.SIGINT)  # Ctrl-C, as the tour says
        assert run.wait(20) == 0
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    said: dict[str, str] = {}
    for command, comment in tour():
        done = subprocess.run(
            ["bash", "-e", "-c", command],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        said[command] = done.stdout + done.stderr
        assert "Traceback" not in said[command], command
        if comment.startswith("ok:"):
            assert said[command].startswith(comment), (command, said[command])
    assert "heartbeat" in said["runner list"]
    assert '"outcome": "succeeded"' in said["runner history heartbeat --json"]
    assert '    schedule.every: "1m" → "5m"' in said["runner plan"]
    assert "would delete old.tmp (age)" in said["runner cleanup --dry-run"]
