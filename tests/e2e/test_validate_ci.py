"""``runner validate`` as a CI check: every problem of every kind in one run, an unset
secret only a warning there (while apply, plan and run refuse it), and ``--check-imports``
finding what would only fail when the job runs."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import Cli

# One of each kind: an unset secret, a wrong type, an unknown field, a bad zone and a bad
# cron in the same event, a duplicate name, and a cleanup of a system directory.
EVERYTHING_WRONG = """\
settings:
  check_interval: fast
  api: {listen: 127.0.0.1:8080, token: "${DEPLOY_TOKEN}"}
events:
  - name: nightly
    command: ["true"]
    schedule: {cron: "0 25 * * *", timezone: Mars/Olympus}
  - name: typo
    command: ["true"]
    schedule: {every: 1h}
    retyr: {attempts: 2}
  - name: nightly
    command: ["true"]
    schedule: {every: 1d}
cleanup:
  - {name: etc, directory: /etc, max_files: 1}
"""
TITLE = "title=runner validate::"
EVERY_PROBLEM = [
    f"::error file=scheduler.yaml,line=2,col=19,{TITLE}must be a number, not a string"
    " (at settings.check_interval)",
    f"::warning file=scheduler.yaml,line=3,col=40,{TITLE}environment variable DEPLOY_TOKEN is"
    " not set (write ${DEPLOY_TOKEN:-default}) (at settings.api.token)",
    f"::error file=scheduler.yaml,line=7,col=22,{TITLE}invalid cron expression '0 25 * * *'",
    f"::error file=scheduler.yaml,line=7,col=46,{TITLE}unknown time zone 'Mars/Olympus' (use"
    " an IANA name such as Europe/Berlin) (at events[0].schedule.timezone)",
    f"::error file=scheduler.yaml,line=11,col=5,{TITLE}unknown field 'retyr'; did you mean"
    " 'retry'? (at events[1].retyr)",
    f"::error file=scheduler.yaml,line=12,col=11,{TITLE}duplicate name 'nightly' (first at"
    " scheduler.yaml:5:11) (at events[2].name)",
    f"::error file=scheduler.yaml,line=16,col=28,{TITLE}refusing to clean /etc: it is a system"
    " directory (at cleanup[0].directory)",
]


def test_validate_github_prints_every_problem_in_one_run(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.write(EVERYTHING_WRONG)
    done = cli("validate", "--format", "github", env={"RUNNER_API_TOKEN": ""})
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == len(EVERY_PROBLEM), done.stdout
    for line, expected in zip(lines, EVERY_PROBLEM, strict=True):
        assert line.startswith(expected), (line, expected)


GOOD_BUT_SECRET = """\
settings:
  database: sqlite:///r.db
  api: {listen: 0.0.0.0:8080, token: "${DEPLOY_TOKEN}"}
events:
  - {name: heartbeat, command: ["true"], schedule: {every: 1m}}
"""


def test_an_unset_secret_passes_validate_fails_strict_and_stops_apply_plan_run(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path)
    cli.write(GOOD_BUT_SECRET)
    validated = cli("validate")
    assert validated.returncode == 0, validated.stdout
    assert validated.stdout.splitlines() == [
        "scheduler.yaml:3:38: warning: environment variable DEPLOY_TOKEN is not set"
        " (write ${DEPLOY_TOKEN:-default}) (at settings.api.token)",
        "ok: 1 events, 0 cleanup policies in 1 files",
    ]
    assert cli("validate", "--strict").returncode == 1
    for command in (["apply"], ["plan"], ["run", "--once"]):
        refused = cli(*command)
        assert refused.returncode == 1, command
        assert "scheduler.yaml:3:38: error: environment variable DEPLOY_TOKEN is not set" in (
            refused.stderr
        ), command
    assert not (tmp_path / "r.db").exists()  # nothing was applied
    assert cli("validate", env={"DEPLOY_TOKEN": "a-long-enough-secret"}).stdout.startswith("ok:")


JOBS = """\
def report(format, pages=1, *, context=None):
    return format
"""
IMPORTS = """\
events:
  - name: good
    function: jobs:report
    parameters: {format: pdf}
    schedule: {every: 1h}
  - name: renamed
    function: jobs:make_report
    parameters: {format: csv}
    schedule: {every: 1h}
  - name: misspelt
    function: jobs:report
    parameters: {fromat: pdf}
    schedule: {every: 1h}
"""


def test_check_imports_catches_a_missing_function_and_a_wrong_parameter_name(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path)
    (tmp_path / "jobs.py").write_text(JOBS)
    cli.write(IMPORTS)
    assert cli("validate").returncode == 0  # without importing, nothing is wrong
    done = cli("validate", "--check-imports")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "scheduler.yaml:7:15: error: cannot import jobs:make_report: AttributeError: module"
        " 'jobs' has no attribute 'make_report' (at events[1].function)",
        "scheduler.yaml:12:18: error: jobs:report(format, pages=1, *, context=None) takes no"
        " parameter 'fromat'; did you mean 'format'? (at events[2].parameters.fromat)",
        "invalid: 2 errors, 0 warnings",
    ]
    cli.write(IMPORTS.replace("make_report", "report").replace("fromat", "format"))
    assert cli("validate", "--check-imports").returncode == 0
