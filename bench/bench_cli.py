"""How fast the ``runner`` command starts: whole processes, as a shell runs them.

Runs ``runner --help``, ``runner validate scheduler.yaml`` (the repository's 30-line
default config), ``runner next heartbeat``, ``runner schema`` and a bare ``python -c
pass``, round-robin (so a busy moment of the machine spreads over all of them), and
prints each one's median wall time and its ratio to the bare interpreter::

    .venv/bin/python bench/bench_cli.py
    .venv/bin/python bench/bench_cli.py --rounds 21

Issue 11's target: ``--help`` and ``validate`` of a small config within 0.25 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = str(Path(sys.executable).with_name("runner"))
CONFIG = str(ROOT / "scheduler.yaml")
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "runner --help": [RUNNER, "--help"],
    "runner validate scheduler.yaml": [RUNNER, "validate", CONFIG],
    "runner next heartbeat": [RUNNER, "next", "heartbeat", "--config", CONFIG],
    "runner schema": [RUNNER, "schema"],
}


def timed(argv: list[str]) -> float:
    """Seconds from spawn to exit; a command that fails stops the benchmark."""
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="runs of each (default 11)")
    rounds = parser.parse_args().rounds
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():  # warm the file cache and bytecode once
        timed(argv)
    for _ in range(rounds):
        for name, argv in COMMANDS.items():
            samples[name].append(timed(argv))
    floor = statistics.median(samples["python -c pass"])
    print(f"{'command':<32} {'median':>9} {'min':>9} {'x python':>9}   ({rounds} runs each)")
    for name, times in samples.items():
        median = statistics.median(times)
        print(f"{name:<32} {median:>8.3f}s {min(times):>8.3f}s {median / floor:>8.1f}x")


if __name__ == "__main__":
    main()
