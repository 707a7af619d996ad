"""The ``runner`` command, run as a user runs it: a subprocess in a directory of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("runner")
TOKEN = "t" * 32

CONFIG = """\
events:
  - name: nightly
    command: ["echo", "nightly"]
    schedule: {cron: "30 2 * * *", timezone: Europe/Berlin}
    retry: {attempts: 2, delay: 10}
  - name: often
    function: myapp.jobs:tick
    schedule: {every: 15m}
cleanup:
  - {name: logs, directory: /srv/logs, max_files: 5}
"""
BROKEN = "events:\n  - name: nightly\n    command: x\n    schedule: {every: 1m}\n    timout: 5\n"
BROKEN_ERROR = (
    "scheduler.yaml:5:5: error: unknown field 'timout'; did you mean 'timeout'?"
    " (at events[0].timout)"
)
PAST_AT = "events:\n  - {name: once, command: x, schedule: {at: '2020-01-01T00:00:00Z'}}\n"


@dataclass
class Cli:
    """Runs ``runner`` in ``cwd`` with a controlled environment (no RUNNER_* leaks in)."""

    cwd: Path

    @property
    def db(self) -> str:
        return f"sqlite:///{self.cwd / 'r.db'}"

    def write(self, text: str, name: str = "scheduler.yaml") -> Path:
        path = self.cwd / name
        path.write_text(textwrap.dedent(text))
        return path

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, script: bool = False
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.cwd),
            "LANG": "C.UTF-8",
            "RUNNER_API_TOKEN": TOKEN,
        }
        if "PYTHONPATH" in os.environ:  # the code under test, when not the installed one
            environ["PYTHONPATH"] = os.environ["PYTHONPATH"]
        environ |= env or {}
        program = [str(SCRIPT)] if script else [sys.executable, "-m", "runner"]
        done = subprocess.run(
            [*program, *args],
            cwd=self.cwd,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def json(self, *args: str) -> Any:
        done = self(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


# --- schema and validate ------------------------------------------------------------------------


def test_schema_prints_the_published_schema(cli: Cli) -> None:
    expected = json.loads((ROOT / "schemas" / "scheduler.schema.json").read_text())
    assert cli.json("schema") == expected


@pytest.mark.parametrize(
    "path",
    [
        *sorted(
            str(p.relative_to(ROOT))
            for p in ROOT.glob("examples/**/*.yaml")
            if "deploy" not in p.parts  # manifests; their runner configs: test_examples.py
        ),
        "examples/split",
        "scheduler.yaml",
    ],
)
def test_validate_accepts_every_example(cli: Cli, path: str) -> None:
    done = cli("validate", str(ROOT / path))
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[-1].startswith("ok: ")


def test_validate_reports_errors_as_file_line_col(cli: Cli) -> None:
    cli.write(BROKEN)
    done = cli("validate")  # the default config: ./scheduler.yaml
    assert done.returncode == 1
    assert done.stdout.splitlines() == [BROKEN_ERROR, "invalid: 1 errors, 0 warnings"]


def test_validate_json_format(cli: Cli) -> None:
    cli.write(BROKEN)
    done = cli("validate", "--format", "json", "scheduler.yaml")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["valid"] is False
    assert report["problems"] == [
        {
            "file": "scheduler.yaml",
            "line": 5,
            "col": 5,
            "severity": "error",
            "path": "events[0].timout",
            "message": "unknown field 'timout'; did you mean 'timeout'?",
        }
    ]
    cli.write(CONFIG)
    valid = cli.json("validate", "--format", "json")
    assert (valid["valid"], valid["events"], valid["cleanup"]) == (True, 2, 1)


def test_validate_github_format(cli: Cli) -> None:
    cli.write(BROKEN + "  - {name: second, command: y, schedule: {every: 1m}, overlap: queue}\n")
    done = cli("validate", "--format", "github", "scheduler.yaml")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("::error file=scheduler.yaml,line=5,col=5,")
    assert lines[0].endswith("::" + BROKEN_ERROR.split(": error: ")[1])
    assert lines[1].startswith("::error file=scheduler.yaml,line=6,col=")


@pytest.mark.parametrize(("flags", "code"), [((), 0), (("--strict",), 1)])
def test_strict_fails_on_warnings(cli: Cli, flags: tuple[str, ...], code: int) -> None:
    cli.write(PAST_AT)
    done = cli("validate", *flags)
    assert done.returncode == code
    assert "scheduler.yaml:2:" in done.stdout
    assert ": warning: at 2020-01-01T00:00:00+00:00 is in the past" in done.stdout


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
FAR_AT = "events: [{name: a, command: x, schedule: {at: '0001-01-01T00:00+14:00'}}]\n"


@pytest.mark.parametrize(
    ("target", "content", "message"),
    [
        pytest.param("b.yaml", bytes(range(256)), "b.yaml:1:1: error: not UTF-8 text", id="binary"),
        pytest.param(
            "conf.d",
            {"notes.txt": "events: []"},
            "conf.d:0:0: error: no *.yaml or *.yml config file found",
            id="no-yaml",
        ),
        pytest.param("gone.yaml", None, "gone.yaml:0:0: error: cannot read", id="missing"),
        pytest.param("bomb.yaml", ALIAS_BOMB.encode(), "alias bomb", id="alias-bomb"),
        pytest.param("l.yaml", b"- a\n- b\n", "l.yaml:1:1: error: must be an object", id="list"),
        pytest.param("k.yaml", b"1: 2\n", "k.yaml:1:", id="int-key"),
        pytest.param(
            "k.yaml",
            b"events: [{name: a, 7: b, command: x, schedule: {every: 1m}}]\n",
            "k.yaml:1:",
            id="int-key-in-event",
        ),
        pytest.param("far.yaml", FAR_AT.encode(), "far.yaml:1:", id="date-out-of-range"),
    ],
)
def test_garbage_is_an_error_not_a_traceback(
    cli: Cli, target: str, content: bytes | dict[str, str] | None, message: str
) -> None:
    if isinstance(content, bytes):
        (cli.cwd / target).write_bytes(content)
    elif isinstance(content, dict):
        (cli.cwd / target).mkdir()
        for name, text in content.items():
            (cli.cwd / target / name).write_text(text)
    for command in (["validate", target], ["apply", "--config", target, "--db", cli.db]):
        done = cli(*command)
        assert done.returncode == 1
        assert message in done.stdout + done.stderr
    assert not (cli.cwd / "r.db").exists()  # an invalid config never reaches a database


@pytest.mark.parametrize(
    "declaration",
    [
        "{name: a, command: x, jitter: 86400, schedule: {at: '9999-12-31T23:59:59'}}",
        "{name: a, command: x, jitter: 60, schedule: {every: 1d, start: '9999-12-31T23:59:30'}}",
        "{name: a, command: x, schedule: {every: 1mo, start: '9999-12-31T00:00:00'}}",
    ],
    ids=["at-and-jitter-past-9999", "every-day-from-the-last-minute", "every-month-from-9999"],
)
def test_what_validate_accepts_apply_applies(cli: Cli, declaration: str) -> None:
    """Edge dates: validate and apply agree (and neither crashes)."""
    cli.write(f"events:\n  - {declaration}\n")
    validated, applied = cli("validate"), cli("apply", "--db", cli.db)
    assert validated.returncode == applied.returncode, applied.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["next", "nope"], "runner: error: no event named 'nope'"),
        (["history", "nope"], "runner: error: no event named 'nope'"),
        (["trigger", "nope"], "runner: error: no event named 'nope'"),
        (["cleanup", "--policy", "nope"], "runner: error: no cleanup policy named nope"),
        (["next", "nightly", "--after", "someday"], "someday"),
        (["apply", "--db", "mysql://u:secret@db/r"], "unsupported database URL"),
        (["apply", "--db", "sqlite:///no/such/dir/r.db"], "does not exist"),
    ],
)
def test_command_errors_are_one_line(cli: Cli, args: list[str], message: str) -> None:
    cli.write(CONFIG)
    db = [] if "--db" in args else ["--db", cli.db]
    done = cli(*args, *db)
    assert done.returncode == 1
    assert message in done.stderr
    assert "secret" not in done.stderr


# --- plan, apply, list -------------------------------------------------------------------------


def test_plan_apply_list_round_trip(cli: Cli) -> None:
    cli.write(CONFIG)
    revision = cli.json("validate", "--format", "json")["revision"]

    plan = cli("plan", "--detailed-exitcode", "--db", cli.db)
    assert plan.returncode == 2, plan.stderr
    assert without_fire_times(plan.stdout) == [
        "+ create event nightly",
        "+ create event often",
        "+ create cleanup logs",
        "Plan: 3 to create, 0 to update, 0 to delete.",
    ]
    assert plan.stdout.count("    next: ") == 2  # each created event's next fire times
    applied = cli("apply", "--db", cli.db)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[-1] == (
        f"Applied: 3 to create, 0 to update, 0 to delete. Revision {revision[:12]}."
    )
    assert cli("plan", "--detailed-exitcode", "--db", cli.db).returncode == 0

    listing = cli.json("list", "--json", "--db", cli.db)
    assert listing["config"]["revision"] == revision
    assert listing["config"]["error"] is None
    assert [(e["name"], e["status"], e["source"]) for e in listing["events"]] == [
        ("nightly", "active", "config"),
        ("often", "active", "config"),
    ]
    assert listing["events"][0]["spec"]["retry"]["attempts"] == 2
    assert all(e["next_execution"] for e in listing["events"])

    again = cli("apply", "--db", cli.db)
    assert again.returncode == 0
    assert again.stdout.startswith("No changes: the database matches the config.")
    assert cli.json("list", "--json", "--db", cli.db) == listing


def test_plan_shows_updates_and_deletes(cli: Cli) -> None:
    cli.write(CONFIG)
    cli("apply", "--db", cli.db)
    changed = CONFIG.replace("attempts: 2", "attempts: 4").replace("every: 15m", "every: 5m")
    cli.write(changed.split("cleanup:")[0])
    plan = cli("plan", "--detailed-exitcode", "--db", cli.db)
    assert plan.returncode == 2
    assert without_fire_times(plan.stdout) == [
        "~ update event nightly: retry",
        "    retry.attempts: 2 → 4",
        "~ update event often: schedule",
        '    schedule.every: "15m" → "5m"',
        "- delete cleanup logs",
        "Plan: 0 to create, 2 to update, 1 to delete.",
    ]


def without_fire_times(output: str) -> list[str]:
    """The lines of a plan without the next fire times (they depend on the day)."""
    fire = ("    next: ", "          ")
    return [line for line in output.splitlines() if not line.startswith(fire)]


def test_broken_config_leaves_the_database_unchanged(cli: Cli) -> None:
    cli.write(CONFIG, "good.yaml")
    cli.write(BROKEN, "scheduler.yaml")
    assert cli("apply", "--config", "good.yaml", "--db", cli.db).returncode == 0
    before = cli.json("list", "--json", "--config", "good.yaml", "--db", cli.db)

    done = cli("apply", "--db", cli.db)

    assert done.returncode == 1
    assert BROKEN_ERROR in done.stderr.splitlines()
    assert cli.json("list", "--json", "--config", "good.yaml", "--db", cli.db) == before


def test_list_works_while_the_config_is_broken(cli: Cli) -> None:
    """`runner list` is where a user looks when the config broke: it must not need it."""
    cli.write(CONFIG)
    cli("apply", "--db", cli.db)
    cli.write(BROKEN)
    listing = cli.json("list", "--json", "--db", cli.db)
    assert [e["name"] for e in listing["events"]] == ["nightly", "often"]


def test_empty_config_needs_allow_empty(cli: Cli) -> None:
    cli.write(CONFIG)
    cli("apply", "--db", cli.db)
    cli.write("# truncated by a bad mount\n")

    plan = cli("plan", "--detailed-exitcode", "--db", cli.db)
    assert "! refused:" in plan.stdout
    assert plan.returncode == 1  # a plan that apply would refuse must fail a CI check
    refused = cli("apply", "--db", cli.db)
    assert refused.returncode == 1
    assert "--allow-empty" in refused.stderr
    assert len(cli.json("list", "--json", "--db", cli.db)["events"]) == 2

    assert cli("apply", "--allow-empty", "--db", cli.db).returncode == 0
    assert cli.json("list", "--json", "--db", cli.db)["events"] == []


# --- next ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", [False, True])
def test_next_prints_local_and_utc_times_across_fall_back(cli: Cli, stored: bool) -> None:
    cli.write(CONFIG)
    if stored:  # an event the config no longer declares is looked up in the database
        cli("apply", "--db", cli.db)
        cli.write("events:\n  - {name: other, command: x, schedule: {every: 1h}}\n")
    done = cli("next", "nightly", "-n", "3", "--after", "2027-10-30T12:00:00Z", "--db", cli.db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nightly: cron '30 2 * * *' in Europe/Berlin",
        "2027-10-31 02:30:00 CEST (+0200)  2027-10-31T00:30:00Z",
        "2027-11-01 02:30:00 CET (+0100)  2027-11-01T01:30:00Z",
        "2027-11-02 02:30:00 CET (+0100)  2027-11-02T01:30:00Z",
        "clock changes:",
        "  2027-10-31 02:30 Europe/Berlin occurs twice (clocks go back from 03:00 CEST to "
        "02:00 CET at 01:00Z): fires once, at 02:30 CEST (00:30Z)",
    ]


def test_next_agrees_with_the_runner_on_a_jittered_event(cli: Cli) -> None:
    cli.write("events:\n  - {name: j, command: x, schedule: {cron: '0 3 * * *'}, jitter: 3000}\n")
    cli("apply", "--db", cli.db)
    stored = cli.json("list", "--json", "--db", cli.db)["events"][0]["next_execution"]
    done = cli("next", "j", "-n", "1", "--db", cli.db)
    utc = done.stdout.split()[-1]
    assert datetime.fromisoformat(utc) == datetime.fromisoformat(stored)
    assert datetime.fromisoformat(utc).minute != 0, "the jitter shifts the cron's time"


# --- database selection and entry points ------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "flag", "used"),
    [
        (False, False, "settings.db"),
        (True, False, "env.db"),
        (True, True, "flag.db"),
        (False, True, "flag.db"),
    ],
)
def test_database_url_precedence(cli: Cli, env: bool, flag: bool, used: str) -> None:
    cli.write(f'settings: {{database: "sqlite:///{cli.cwd}/settings.db"}}\n' + CONFIG)
    environ = {"RUNNER_DATABASE_URL": f"sqlite:///{cli.cwd}/env.db"} if env else {}
    args = ["--db", f"sqlite:///{cli.cwd}/flag.db"] if flag else []
    done = cli("apply", *args, env=environ)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in cli.cwd.glob("*.db")) == [used]


def test_module_and_console_script_are_the_same_program(cli: Cli) -> None:
    module, script = cli("--help"), cli("--help", script=True)
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout
    assert module.stdout.startswith("usage: runner ")
    for command in ("validate", "plan", "apply", "list", "next", "schema"):
        assert command in module.stdout
    assert cli("schema", script=True).stdout == cli("schema").stdout


# --- what the quick commands load -------------------------------------------------------------

# Runs one command in a fresh interpreter, then names the heavy packages it imported.
LOADED = """\
import sys
from runner.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:  # --help
    status = exc.code
heavy = ("sqlalchemy", "alembic", "aiosqlite", "asyncpg", "fastapi", "uvicorn", "watchfiles")
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
print("LOADED", status, " ".join(loaded + [m for m in sys.modules if m == "runner.service"]))
"""


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["--help"], 0),
        (["validate"], 0),
        (["validate", "--format", "json"], 0),
        (["next", "nightly", "-n", "2"], 0),
        (["next", "--cron", "0 3 * * 2#2", "--timezone", "Europe/Berlin"], 0),
        (["next", "--every", "1d", "--start", "2027-01-01T09:00"], 0),
        (["schema"], 0),
        (["plan"], 1),  # a broken config: plan's config half fails before any database
    ],
)
def test_quick_commands_do_not_load_the_database_stack(
    cli: Cli, args: list[str], status: int
) -> None:
    """``--help``, ``validate``, ``next`` of a config event, ``schema`` and a plan that the
    config refuses start without SQLAlchemy, Alembic, the drivers or the HTTP stack."""
    cli.write(BROKEN if args == ["plan"] else CONFIG)
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout.splitlines()[-1] == f"LOADED {status} "


def test_the_package_names_the_library_api_without_loading_it_first(cli: Cli) -> None:
    probe = (
        "import sys, runner; before = 'sqlalchemy' in sys.modules;"
        " print(before, runner.SchedulerService.__name__, runner.Result.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "SchedulerService", "Result"]
