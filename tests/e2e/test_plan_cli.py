"""``runner plan`` shows, per change, what changes from what to what, and when it fires."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import Cli

BEFORE = """\
settings: {database: "sqlite:///r.db", timezone: Europe/Berlin}
events:
  - {name: report, command: ["true"], schedule: {cron: "0 4 * * *"}, timeout: 10}
  - {name: gone, command: ["true"], schedule: {every: 1h}}
"""
AFTER = """\
settings: {database: "sqlite:///r.db", timezone: Europe/Berlin}
events:
  - {name: report, command: ["true"], schedule: {cron: "0 4 * * *"}, timeout: 20}
  - {name: fresh, command: ["true"], schedule: {at: "2030-01-02T03:04:05Z"}}
"""


def test_plan_shows_old_and_new_values_and_next_fires_as_text_and_json(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.write(BEFORE)
    assert cli("apply").returncode == 0
    cli.write(AFTER)

    done = cli("plan", "--detailed-exitcode")
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [
        "~ update event report: timeout",
        "    timeout: 10 → 20",
        "+ create event fresh",
        "    next: 2030-01-02 04:04:05 CET (+0100)  2030-01-02T03:04:05Z",
        "- delete event gone",
        "Plan: 1 to create, 1 to update, 1 to delete.",
    ]

    data = json.loads(cli("plan", "--format", "json").stdout)
    changes = {c["name"]: c for c in data["changes"]}
    assert changes["report"]["values"] == [{"field": "timeout", "old": 10, "new": 20}]
    assert changes["report"]["next_fires"] == []  # the schedule did not move
    assert changes["fresh"]["next_fires"] == ["2030-01-02T03:04:05Z"]
    assert changes["gone"]["action"] == "delete"
    assert data["counts"] == {"create": 1, "update": 1, "delete": 1}

    cli.write(BEFORE.replace('cron: "0 4 * * *"', "every: 1d, start: '2030-01-01T06:00:00'"))
    rescheduled = cli("plan").stdout.splitlines()
    assert rescheduled[:3] == [
        "~ update event report: schedule",
        '    schedule.cron: "0 4 * * *" → (absent)',
        '    schedule.every: (absent) → "1d"',
    ]
    assert rescheduled[4].startswith(
        "    next: 2030-01-01 06:00:00 CET (+0100)  2030-01-01T05:00:00Z"
    )
