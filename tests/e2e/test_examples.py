"""The library example runs as its docstring says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "library.py"


def test_library_example_schedules_runs_and_refuses() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("scheduled: True")
    assert lines[2].startswith("refused: validation_error - ")
    assert "name: names use lowercase letters" in lines[2]
    assert lines[3] == "say-hello ran: [('succeeded', '{\"hello\": \"world\"}')]"
    assert lines[4] == "events in module 'examples': 1"
