"""``runner next`` as a user runs it: previews of a cron or an every without any config
(like ``systemd-analyze calendar``), and of one event of a config whose others are broken."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.helpers import CLI_TIMEOUT, controlled_environ


def runner(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m runner ARGS`` in ``cwd``, which holds no config unless a test writes one."""
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=controlled_environ(cwd),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


BERLIN_DAILY = ["next", "--cron", "0 2 * * *", "--timezone", "Europe/Berlin", "-n", "4"]


def test_cron_preview_across_spring_forward(tmp_path: Path) -> None:
    done = runner(tmp_path, *BERLIN_DAILY, "--after", "2027-03-26")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "cron '0 2 * * *' in Europe/Berlin",
        "2027-03-26 02:00:00 CET (+0100)  2027-03-26T01:00:00Z",
        "2027-03-27 02:00:00 CET (+0100)  2027-03-27T01:00:00Z",
        "2027-03-28 03:00:00 CEST (+0200)  2027-03-28T01:00:00Z",
        "2027-03-29 02:00:00 CEST (+0200)  2027-03-29T00:00:00Z",
        "clock changes:",
        "  2027-03-28 02:00 Europe/Berlin does not exist (clocks jump from 02:00 CET to "
        "03:00 CEST at 01:00Z): fires at 03:00 CEST (01:00Z)",
    ]


def test_cron_preview_across_fall_back(tmp_path: Path) -> None:
    done = runner(tmp_path, *BERLIN_DAILY, "--after", "2027-10-29")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "cron '0 2 * * *' in Europe/Berlin",
        "2027-10-29 02:00:00 CEST (+0200)  2027-10-29T00:00:00Z",
        "2027-10-30 02:00:00 CEST (+0200)  2027-10-30T00:00:00Z",
        "2027-10-31 02:00:00 CEST (+0200)  2027-10-31T00:00:00Z",
        "2027-11-01 02:00:00 CET (+0100)  2027-11-01T01:00:00Z",
        "clock changes:",
        "  2027-10-31 02:00 Europe/Berlin occurs twice (clocks go back from 03:00 CEST to "
        "02:00 CET at 01:00Z): fires once, at 02:00 CEST (00:00Z)",
    ]


def test_cron_preview_names_the_day_form(tmp_path: Path) -> None:
    done = runner(tmp_path, "next", "--cron", "0 3 * * 2#2", "-n", "2", "--after", "2027-01-01")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "cron '0 3 * * 2#2' in UTC: the 2nd Tuesday of each month",
        "2027-01-12 03:00:00 UTC (+0000)  2027-01-12T03:00:00Z",
        "2027-02-09 03:00:00 UTC (+0000)  2027-02-09T03:00:00Z",
    ]


def test_every_preview_from_a_start(tmp_path: Path) -> None:
    done = runner(
        tmp_path,
        *["next", "--every", "1d", "--start", "2027-01-01T02:30", "--timezone", "Europe/Berlin"],
        *["-n", "2", "--after", "2027-03-27"],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "every 1 day from 2027-01-01T02:30:00+01:00 in Europe/Berlin",
        "2027-03-27 02:30:00 CET (+0100)  2027-03-27T01:30:00Z",
        "2027-03-28 03:00:00 CEST (+0200)  2027-03-28T01:00:00Z",
        "clock changes:",
        "  2027-03-28 02:30 Europe/Berlin does not exist (clocks jump from 02:00 CET to "
        "03:00 CEST at 01:00Z): fires at 03:00 CEST (01:00Z)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cron", "0 3 * * 2#6"], "the K of N#K must be 1 to 5"),
        (["--cron", "0 3 * * *", "--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--cron", "0 3 * * *", "--start", "2027-01-01"], "start is only allowed with every"),
        (["--every", "15x"], "every must be a positive number"),
        (["--cron", "0 3 * * *", "--after", "soon"], "--after: 'soon' is not an ISO 8601"),
        (["nightly", "--cron", "0 3 * * *"], "not both"),
        ([], "next needs an event NAME, --cron EXPR or --every SPEC"),
    ],
)
def test_preview_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    done = runner(tmp_path, "next", *args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert message in done.stderr


BROKEN_NEIGHBOURS = """\
events:
  - name: nightly
    command: ["echo", "nightly"]
    schedule: {cron: "30 2 * * *", timezone: Europe/Berlin}
  - name: patchday
    command: ["echo", "patch"]
    schedule: {cron: "0 3 * * 2#9"}
  - name: typo
    command: ["echo", "typo"]
    schedule: {every: 1h}
    timout: 5
"""


def test_next_of_a_valid_event_beside_broken_ones(tmp_path: Path) -> None:
    (tmp_path / "scheduler.yaml").write_text(BROKEN_NEIGHBOURS)
    done = runner(tmp_path, "next", "nightly", "-n", "2", "--after", "2027-01-01T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nightly: cron '30 2 * * *' in Europe/Berlin",
        "2027-01-01 02:30:00 CET (+0100)  2027-01-01T01:30:00Z",
        "2027-01-02 02:30:00 CET (+0100)  2027-01-02T01:30:00Z",
    ]
    # Every problem of the others is reported, in file order.
    assert done.stderr.splitlines() == [
        "scheduler.yaml:7:22: error: invalid cron expression '0 3 * * 2#9': day-of-week "
        "'2#9': the K of N#K must be 1 to 5 (N#K is the K-th weekday N of the month, e.g. "
        "2#2 is the 2nd Tuesday) (at events[1].schedule.cron)",
        "scheduler.yaml:11:5: error: unknown field 'timout'; did you mean 'timeout'? "
        "(at events[2].timout)",
    ]


@pytest.mark.parametrize("name", ["typo", "patchday", "missing"])
def test_next_of_an_invalid_event_fails(tmp_path: Path, name: str) -> None:
    (tmp_path / "scheduler.yaml").write_text(BROKEN_NEIGHBOURS)
    done = runner(tmp_path, "next", name)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "unknown field 'timout'" in done.stderr


def test_next_reports_a_bad_cron_beside_a_good_event(tmp_path: Path) -> None:
    config = textwrap.dedent(
        """\
        events:
          - {name: nightly, command: x, schedule: {cron: "30 2 * * *"}}
          - {name: patchday, command: x, schedule: {cron: "0 3 * * 2#9"}}
          - {name: lastfriday, command: x, schedule: {cron: "0 18 * * 5L"}}
        """
    )
    (tmp_path / "scheduler.yaml").write_text(config)
    done = runner(tmp_path, "next", "nightly", "-n", "1", "--after", "2027-01-01T00:00:00Z")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nightly: cron '30 2 * * *' in UTC",
        "2027-01-01 02:30:00 UTC (+0000)  2027-01-01T02:30:00Z",
    ]
    assert "scheduler.yaml:3:51: error: invalid cron expression '0 3 * * 2#9'" in done.stderr
    assert runner(tmp_path, "next", "patchday").returncode == 1
    last = runner(tmp_path, "next", "lastfriday", "-n", "1", "--after", "2027-01-01T00:00:00Z")
    assert last.stdout.splitlines() == [
        "lastfriday: cron '0 18 * * 5L' in UTC: the last Friday of each month",
        "2027-01-29 18:00:00 UTC (+0000)  2027-01-29T18:00:00Z",
    ]
