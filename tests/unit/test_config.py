"""Config loading: every problem reported with file:line:col, and valid files resolved."""

from __future__ import annotations

import concurrent.futures
import os
import shlex
import string
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import config as configs
from runner.errors import ConfigError, Problem
from runner.specs import CommandJob, Config, FunctionJob, RetryPolicy, Settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WriteConfig = Callable[..., Path]
EXAMPLES = [
    *sorted(p for p in Path("examples").glob("**/*.y*ml") if "deploy" not in p.parts),
    Path("scheduler.yaml"),
]


@pytest.fixture
def write(tmp_path: Path) -> WriteConfig:
    """Write a YAML file (dedented) into a temporary directory and return its path."""

    def write(text: str, name: str = "scheduler.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def problems(path: Path, environ: dict[str, str] | None = None) -> list[Problem]:
    return configs.validate([path], environ or {}, NOW).problems


def errors(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Errors as ``line:col: message (at path)``, the part a user reads."""
    return [
        f"{p.line}:{p.col}: {p.message} (at {p.path})"
        for p in problems(path, environ)
        if p.severity == "error"
    ]


def load(path: Path, environ: dict[str, str] | None = None) -> Config:
    return configs.load([path], environ or {}, NOW)


def test_contract_example_loads_with_defaults_resolved() -> None:
    config = configs.load(
        [Path("examples/full.yaml")], {"RUNNER_API_TOKEN": "s3cret-token-0123456789"}, NOW
    )
    backup, report, launch = config.events
    assert backup.schedule == {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}
    assert backup.job == CommandJob(argv=("pg_dump", "-f", "/backups/db.sql"), env={"PGHOST": "db"})
    assert backup.retry == RetryPolicy(attempts=5, delay=60, backoff=2, max_delay=3600)
    assert backup.misfire.grace == 3600
    assert report.job == FunctionJob("myapp.reports:generate_weekly", {"format": "pdf"})
    assert report.timeout == 300  # settings.execution_timeout
    assert report.retry == RetryPolicy(attempts=3, delay=300)  # settings defaults
    assert report.schedule["timezone"] == "UTC"
    assert launch.enabled is False
    assert not launch.recurring
    assert config.settings.api.token == "s3cret-token-0123456789"
    (logs,) = config.cleanups
    assert (logs.directory, logs.exclude, logs.priority) == ("/var/log/app", ("current.log",), 10)


SCHEMA_ERRORS = [
    (
        "settings:\n  check_interval: 0.01\n",
        "2:19: 0.01 is less than the minimum of 0.1 (at settings.check_interval)",
    ),
    (
        "settings:\n  max_concurrent_executions: 500\n",
        "2:30: 500 is greater than the maximum of 100 (at settings.max_concurrent_executions)",
    ),
    (
        "events:\n  - name: a\n    command: x\n    schedule: {cron: '* * * * *'}\n    timout: 5\n",
        "5:5: unknown field 'timout'; did you mean 'timeout'? (at events[0].timout)",
    ),
    (
        "events:\n  - name: Bad Name\n    command: x\n    schedule: {every: 1m}\n",
        "2:11: names use lowercase letters, digits, '.', '_' and '-', start with a letter or"
        " digit, and have at most 100 characters (at events[0].name)",
    ),
    (
        "events:\n  - name: a\n    command: x\n    function: m:f\n    schedule: {every: 1m}\n",
        "2:5: an event runs exactly one of function (with parameters) or command"
        " (with env, cwd, shell) (at events[0])",
    ),
    (
        "events:\n  - name: a\n    command: x\n    schedule: {every: 1m, at: '2027-01-01'}\n",
        "4:15: a schedule has exactly one of cron, every or at (start goes with every)"
        " (at events[0].schedule)",
    ),
    (
        "events:\n  - name: a\n    command: x\n    schedule: {every: 5 minutes}\n",
        "4:23: every is a positive number followed by s, m, h, d, w or mo (e.g. 15m), or a"
        " mapping with one unit, e.g. {minutes: 15} (at events[0].schedule.every)",
    ),
    (
        "events:\n  - name: a\n    command: x\n    timeout: soon\n    schedule: {every: 1m}\n",
        "4:14: must be a number, not a string (at events[0].timeout)",
    ),
    (
        "events:\n  - name: a\n    command: x\n    overlap: queue\n    schedule: {every: 1m}\n",
        "4:14: 'queue' is not one of: forbid, allow, replace (at events[0].overlap)",
    ),
    (
        "events:\n  - command: x\n",
        "2:5: missing required field 'name', 'schedule' (at events[0])",
    ),
    (
        "events:\n  - name: a\n    function: not-a-function\n    schedule: {every: 1m}\n",
        "3:15: a function is a registered name (backup_database) or module:callable"
        " (myapp.reports:generate_weekly) (at events[0].function)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), SCHEMA_ERRORS)
def test_schema_errors_point_at_the_field(write: WriteConfig, text: str, expected: str) -> None:
    assert errors(write(text)) == [expected]


@pytest.mark.parametrize(("text", "expected"), SCHEMA_ERRORS)
def test_the_fast_schema_check_never_passes_what_jsonschema_refuses(
    write: WriteConfig, text: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jsonschema-rs only short-cuts the all-valid case; jsonschema alone writes messages."""
    data = yaml.safe_load(text)
    assert not configs._valid_fast(data)
    path = write(text)
    with_fast = problems(path)
    monkeypatch.setattr(configs, "_fast_check", lambda: None)
    assert problems(path) == with_fast


@pytest.mark.parametrize("path", EXAMPLES, ids=str)
def test_the_fast_schema_check_passes_what_jsonschema_passes(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert configs._fast_check() is not None, "jsonschema-rs is a dependency"
    assert configs._valid_fast(data) == configs._validator().is_valid(data)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("{cron: '61 * * * *'}", "4:22: "),
        ("{cron: '0 0 30 2 *'}", "4:22: "),
        ("{cron: '* * * * *', timezone: Mars/Olympus}", "4:45: unknown time zone 'Mars/Olympus'"),
        ("{at: 'next tuesday'}", "4:20: "),
        ("{every: 1d, start: '2027-13-01'}", "4:34: start: '2027-13-01' is not an ISO 8601"),
    ],
)
def test_checks_beyond_the_schema(write: WriteConfig, schedule: str, expected: str) -> None:
    text = f"events:\n  - name: a\n    command: x\n    schedule: {schedule}\n"
    (error,) = errors(write(text))
    assert error.startswith(expected), error


def test_every_problem_is_reported_at_once(write: WriteConfig) -> None:
    path = write(
        """\
        settings:
          check_interval: 100
        events:
          - name: a
            command: x
            schedule: {cron: "bogus"}
          - name: b
            command: y
            schedule: {every: 1m}
            retry: {attempts: -1}
        """
    )
    # Schema problems (lines 2 and 10) do not hide the bad cron of another event (line 6).
    assert [e.split(":")[0] for e in errors(path)] == ["2", "6", "10"]


def test_semantic_errors_are_all_reported(write: WriteConfig) -> None:
    path = write(
        """\
        events:
          - name: a
            command: x
            schedule: {cron: "bogus"}
          - name: b
            command: y
            schedule: {every: 1m, timezone: Nowhere/Land}
          - name: a
            command: z
            schedule: {every: 1m}
        """
    )
    found = errors(path)
    assert [e.split(":")[0] for e in found] == ["4", "7", "8"]
    assert "duplicate name 'a' (first at " in found[2]


def test_events_sharing_a_schedule_each_get_its_problems_at_their_own_line(
    write: WriteConfig,
) -> None:
    """A schedule is judged once for all the events declaring it; each is told."""
    event = "  - name: {}\n    command: x\n    schedule: {{cron: '0 2 * * *', timezone: {}}}\n"
    berlin = "".join(event.format(f"b{i}", "Europe/Berlin") for i in range(2))
    nowhere = "".join(event.format(f"n{i}", "Nowhere/Land") for i in range(2))
    found = problems(write("events:\n" + berlin + nowhere))
    assert [(p.line, p.severity, p.path) for p in found] == [
        *[(4, "warning", "events[0].schedule")] * 2,  # spring forward, fall back
        *[(7, "warning", "events[1].schedule")] * 2,
        (10, "error", "events[2].schedule.timezone"),
        (13, "error", "events[3].schedule.timezone"),
    ]
    assert [p.message for p in found[:2]] == [p.message for p in found[2:4]]
    assert found[0].message.startswith("02:00 does not exist in Europe/Berlin on 2027-03-28")


def test_names_are_unique_across_files(tmp_path: Path, write: WriteConfig) -> None:
    write("events:\n  - {name: a, command: x, schedule: {every: 1m}}\n", "a.yaml")
    write("events:\n  - {name: a, command: y, schedule: {every: 1m}}\n", "b.yaml")
    (problem,) = configs.validate([tmp_path], {}, NOW).problems
    assert problem.file.endswith("b.yaml")
    assert (problem.line, problem.col) == (2, 12)
    assert problem.message == f"duplicate name 'a' (first at {tmp_path / 'a.yaml'}:2:12)"


def test_settings_in_one_file_only(tmp_path: Path, write: WriteConfig) -> None:
    write("settings: {timezone: UTC}\n", "a.yaml")
    write("settings: {timezone: UTC}\n", "b.yaml")
    (problem,) = configs.validate([tmp_path], {}, NOW).problems
    assert problem.file.endswith("b.yaml")
    assert "settings may appear in one file only" in (problem.message)


def test_yaml_syntax_error_has_its_position(write: WriteConfig) -> None:
    path = write("events:\n  - name: a\n    command: [unclosed\n")
    (error,) = errors(path)
    assert error.startswith("4:1: invalid YAML:")


def test_duplicate_keys_are_refused(write: WriteConfig) -> None:
    path = write("events:\n  - name: a\n    name: b\n    command: x\n    schedule: {every: 1m}\n")
    assert errors(path) == ["3:5: duplicate key 'name' (first at line 2) (at events[0].name)"]


def test_alias_bomb_is_refused_quickly(write: WriteConfig) -> None:
    lines = ["a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']"]
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    (error,) = errors(write("\n".join(lines) + "\n"))
    assert "alias bomb" in error


def test_anchors_and_merge_keys_work(write: WriteConfig) -> None:
    config = load(
        write(
            """\
            x-defaults: &defaults
              timeout: 42
              command: ["true"]
            events:
              - <<: *defaults
                name: a
                schedule: {every: 1m}
              - <<: *defaults
                name: b
                timeout: 7
                schedule: {every: 1m}
            """
        )
    )
    assert [(e.name, e.timeout) for e in config.events] == [("a", 42), ("b", 7)]


def test_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"events: \xff\xfe\n")
    (problem,) = problems(path)
    assert problem.message.startswith("not UTF-8 text")


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    (missing,) = configs.validate([tmp_path / "nope.yaml"], {}, NOW).problems
    assert "cannot read" in missing.message
    (empty,) = configs.validate([tmp_path], {}, NOW).problems
    assert empty.message == "no *.yaml or *.yml config file found"


def test_environment_substitution(write: WriteConfig) -> None:
    path = write(
        """\
        settings:
          database: ${DB_URL}
          execution_timeout: ${TIMEOUT}
        events:
          - name: a
            command: ["echo", "${GREETING:-hello}", "$${LITERAL}", "${EMPTY:-fallback}"]
            env: {PORT: "${PORT}"}
            schedule: {every: 1m}
        """
    )
    environ = {"DB_URL": "sqlite:///x.db", "TIMEOUT": "45", "PORT": "8080", "EMPTY": ""}
    config = load(path, environ)
    assert config.settings.database == "sqlite:///x.db"
    assert config.settings.execution_timeout == 45  # a plain ${VAR} becomes a number
    (event,) = config.events
    assert event.job == CommandJob(
        argv=("echo", "hello", "${LITERAL}", "fallback"), env={"PORT": "8080"}
    )


def test_unset_variable_is_an_error_at_its_line(write: WriteConfig) -> None:
    path = write("settings:\n  timezone: UTC\n  database: ${NOT_SET}\n")
    assert errors(path) == [
        "3:13: environment variable NOT_SET is not set (write ${NOT_SET:-default})"
        " (at settings.database)"
    ]


def test_load_raises_config_error_with_every_problem(write: WriteConfig) -> None:
    path = write("settings:\n  check_interval: 0\n  max_concurrent_executions: 0\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert len(caught.value.problems) == 2
    assert str(caught.value).startswith(f"{path}:2:19: error: ")


def test_directory_is_read_sorted_and_skips_hidden_and_other_files(tmp_path: Path) -> None:
    # The layout Kubernetes mounts a ConfigMap as: files are symlinks through ..data.
    data = tmp_path / "..2026_11_26_12_00_00.1"
    data.mkdir()
    (data / "b.yaml").write_text("events:\n  - {name: b, command: x, schedule: {every: 1m}}\n")
    (data / "a.yml").write_text("events:\n  - {name: a, command: x, schedule: {every: 1m}}\n")
    (tmp_path / "..data").symlink_to(data.name)
    for name in ("b.yaml", "a.yml"):
        (tmp_path / name).symlink_to(f"..data/{name}")
    (tmp_path / "README.md").write_text("not config")
    (tmp_path / ".hidden.yaml").write_text("garbage: [")
    config = configs.load([tmp_path], {}, NOW)
    assert [e.name for e in config.events] == ["a", "b"]


def test_command_strings_are_split_like_a_shell(write: WriteConfig) -> None:
    path = write(
        """\
        events:
          - {name: a, command: "tar -czf '/backups/my file.tgz' /data", schedule: {every: 1h}}
          - {name: b, command: "echo $HOME | wc", shell: true, schedule: {every: 1h}}
        """
    )
    a, b = load(path).events
    assert a.job == CommandJob(argv=("tar", "-czf", "/backups/my file.tgz", "/data"))
    assert b.job == CommandJob(argv=("echo $HOME | wc",), shell=True)


@given(st.text(alphabet=string.printable + "\u00a0\u2003äß", max_size=40))
@settings(max_examples=500, deadline=None, database=None)
def test_any_command_string_is_split_as_shlex_splits_it(command: str) -> None:
    try:
        expected: list[str] | str = shlex.split(command)
    except ValueError as exc:
        expected = str(exc)
    try:
        found: list[str] | str = configs._split(command)
    except ValueError as exc:
        found = str(exc)
    assert found == expected


def test_unbalanced_quotes_in_a_command(write: WriteConfig) -> None:
    path = write('events:\n  - {name: a, command: "echo \'oops", schedule: {every: 1h}}\n')
    (error,) = errors(path)
    assert error.startswith("2:24: cannot split command: No closing quotation")


@pytest.mark.parametrize("directory", ["/", "/etc", "/usr", "/var", "/home/", "/usr/../etc"])
def test_cleanup_refuses_system_roots(write: WriteConfig, directory: str) -> None:
    path = write(f"cleanup:\n  - {{name: c, directory: '{directory}', max_files: 1}}\n")
    (error,) = errors(path)
    assert "it is a system directory" in error


def test_cleanup_refuses_the_runners_own_files(tmp_path: Path, write: WriteConfig) -> None:
    path = write(
        f"""\
        settings: {{database: "sqlite:///{tmp_path}/data/runner.db"}}
        cleanup:
          - {{name: db, directory: {tmp_path}/data, max_files: 1}}
          - {{name: cfg, directory: ., max_files: 1}}
          - {{name: above, directory: {tmp_path}, recursive: true, max_files: 1}}
          - {{name: beside, directory: {tmp_path}/logs, recursive: true, max_files: 1}}
        """
    )
    found = errors(path)
    assert len(found) == 3
    assert "runner.db" in found[0]
    assert "scheduler.yaml" in found[1]
    assert "scheduler.yaml" in found[2]


def test_relative_cleanup_directory_is_relative_to_the_file(
    tmp_path: Path, write: WriteConfig
) -> None:
    path = write("cleanup:\n  - {name: c, directory: logs/old, max_files: 3}\n")
    (policy,) = load(path).cleanups
    assert policy.directory == str(tmp_path / "logs" / "old")


def test_warnings_do_not_invalidate(write: WriteConfig) -> None:
    path = write(
        """\
        events:
          - name: berlin-night
            command: x
            schedule: {cron: "30 2 * * *", timezone: Europe/Berlin}
          - name: long-gone
            command: x
            schedule: {at: "2020-01-01T00:00:00Z"}
        cleanup:
          - {name: logs, directory: /srv/logs}
        """
    )
    report = configs.validate([path], {}, NOW)
    assert report.config is not None
    assert not report.errors
    messages = [(w.line, w.message) for w in report.warnings]
    assert (4, messages[0][1]) == messages[0]
    assert "does not exist" in messages[0][1]
    assert any("occurs twice" in m for _, m in messages)
    assert (7, "at 2020-01-01T00:00:00+00:00 is in the past; it will not run") in messages
    assert any(line == 9 and "default_retention (30 days) applies" in m for line, m in messages)


def test_revision_follows_content_and_environment(write: WriteConfig) -> None:
    path = write("events:\n  - {name: a, command: ['echo', '${WHO}'], schedule: {every: 1m}}\n")
    first = load(path, {"WHO": "x"}).revision
    assert load(path, {"WHO": "x"}).revision == first
    assert load(path, {"WHO": "y"}).revision != first


def test_empty_file_is_a_valid_empty_config(write: WriteConfig) -> None:
    config = load(write("# nothing yet\n"))
    assert config.empty
    assert config.settings.timezone == "UTC"


def test_schema_file_at_top_level_is_the_packaged_one() -> None:
    import json

    assert json.loads(Path("schemas/scheduler.schema.json").read_text()) == configs.schema()


@pytest.mark.parametrize("path", EXAMPLES)
def test_examples_are_valid(path: Path) -> None:
    target = path.parent if path.parent.name == "split" else path
    report = configs.validate([target], {"RUNNER_API_TOKEN": "t" * 32}, NOW)
    assert report.errors == []


# --- hostile or unlucky input (issue 10) -------------------------------------------------------

EVENT = "events:\n  - {name: a, function: m:f, schedule: {every: 1m}%s}\n"


@pytest.mark.parametrize("number", [".nan", ".NaN", ".inf", "-.inf", "+.Inf"])
@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("settings: {check_interval: %s}\n", "settings.check_interval"),
        ("settings: {lease_seconds: %s}\n", "settings.lease_seconds"),
        ("settings: {retention_days: %s}\n", "settings.retention_days"),
        (
            "settings: {housekeeper: {default_retention: %s}}\n",
            "settings.housekeeper.default_retention",
        ),
        (EVENT % ", timeout: %s", "events[0].timeout"),
        (EVENT % ", retry: {delay: %s}", "events[0].retry.delay"),
        (EVENT % ", misfire: {grace: %s}", "events[0].misfire.grace"),
        (EVENT % ", parameters: {x: [%s]}", "events[0].parameters.x[0]"),
        (
            "cleanup:\n  - {name: c, directory: logs, retention_days: %s}\n",
            "cleanup[0].retention_days",
        ),
    ],
)
def test_non_finite_numbers_are_refused_everywhere_with_their_position(
    write: WriteConfig, text: str, field: str, number: str
) -> None:
    value = float(number.replace(".", ""))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "%s" in row)
    col = text.splitlines()[line - 1].index("%s") + 1
    expected = f"{line}:{col}: must be a finite number, not {value} (at {field})"
    assert errors(write(text % number)) == [expected]


def test_non_finite_numbers_from_the_environment_are_refused(write: WriteConfig) -> None:
    path = write("settings:\n  check_interval: ${INTERVAL}\n")
    assert errors(path, {"INTERVAL": ".nan"}) == [
        "2:19: must be a finite number, not nan (at settings.check_interval)"
    ]


def test_non_finite_numbers_in_code_declarations_are_refused() -> None:
    data = {"name": "a", "function": "m:f", "schedule": {"every": "1m"}, "timeout": float("inf")}
    report = configs.validate_data({"events": [data]}, "api", NOW, Settings())
    assert [(p.message, p.path) for p in report.errors] == [
        ("must be a finite number, not inf", "events[0].timeout")
    ]


@pytest.mark.parametrize("kind", ["dangling", "looping"])
def test_a_broken_yaml_symlink_in_the_config_directory_is_an_error_naming_it(
    tmp_path: Path, kind: str
) -> None:
    (tmp_path / "a.yaml").write_text(EVENT % "")
    target = tmp_path / "missing.yaml" if kind == "dangling" else tmp_path / "b.yaml"
    (tmp_path / "b.yaml").symlink_to(target)
    (problem,) = configs.validate([tmp_path], {}, NOW).problems
    assert problem.file == str(tmp_path / "b.yaml")
    reason = "No such file or directory" if kind == "dangling" else "Too many levels"
    assert problem.message.startswith(f"cannot read: {reason}"), problem.message


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "scheduler.yaml"
    os.mkfifo(fifo)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(configs.validate, [fifo], {}, NOW)
        try:
            report = future.result(timeout=10)
        except concurrent.futures.TimeoutError:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the reader go
            pytest.fail("validate blocked reading a FIFO")
    (problem,) = report.problems
    assert (problem.file, problem.message) == (
        str(fifo),
        "cannot read: not a regular file (a FIFO)",
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # in a directory too
        future = pool.submit(configs.validate, [tmp_path], {}, NOW)
        (problem,) = future.result(timeout=10).problems
    assert problem.message == "cannot read: not a regular file (a FIFO)"


def test_nesting_built_through_an_alias_is_a_clear_error(write: WriteConfig) -> None:
    # 2.4 KB: 600 mappings nested in an anchor, used once more through an alias.
    nested = "{a: " * 600 + "1" + "}" * 600
    path = write(f"x-deep: &deep {nested}\nx-again: *deep\n")
    assert len(path.read_bytes()) < 5000
    (error,) = errors(path)
    assert error.startswith("1:")
    assert "nested more than 100 levels deep; refused" in error


def test_nesting_written_out_is_a_clear_error(write: WriteConfig) -> None:
    path = write("x-deep: " + "[" * 300 + "]" * 300 + "\n")
    assert ["nested more than 100 levels deep" in e for e in errors(path)] == [True]


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_an_api_port_out_of_range_is_refused(write: WriteConfig, port: str) -> None:
    path = write(f"settings:\n  api: {{listen: '127.0.0.1:{port}'}}\n")
    assert errors(path) == [
        f"2:17: port {int(port)} is out of range: use 1 to 65535 (at settings.api.listen)"
    ]


def test_api_ports_at_the_ends_of_the_range_are_accepted(write: WriteConfig) -> None:
    for port in (1, 65535):
        assert errors(write(f"settings:\n  api: {{listen: '127.0.0.1:{port}'}}\n")) == []


def test_the_fast_schema_check_compiles_the_schema_and_leaves_odd_names_to_jsonschema() -> None:
    """Rust's regular expressions have no surrogates, nor can a value with one reach them:
    such documents go to jsonschema, as do those the schema refuses (a NUL)."""
    assert configs._fast_check() is not None
    for directory in ("lo\0gs", "lo\udc80gs"):
        data = {"cleanup": [{"name": "c", "directory": directory, "max_files": 1}]}
        assert not configs._valid_fast(data)
    assert configs._valid_fast({"cleanup": [{"name": "c", "directory": "logs", "max_files": 1}]})
