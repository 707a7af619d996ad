"""Config files → a validated :class:`~runner.specs.Config`, with every problem found at once.

Loading runs in three stages, each reporting ``file:line:col`` problems:
YAML (:mod:`runner.yamlsource`), the JSON Schema in ``scheduler.schema.json``, and the
checks a schema cannot make (cron expressions that parse and fire, time zones that
exist, names unique across files, safe cleanup directories). Nothing here touches the
database or reads the clock: ``now`` is a parameter.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import functools
import gc
import json
import logging
import math
import os
import shlex
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner import functions, schedules
from runner.errors import ConfigError, Problem
from runner.netaddr import is_loopback, split_listen
from runner.safety import own_files, unsafe_directory
from runner.specs import (
    AgentSettings,
    ApiSettings,
    CleanupSpec,
    CommandJob,
    Config,
    EventSpec,
    FunctionJob,
    HousekeeperSettings,
    MisfirePolicy,
    RetryPolicy,
    Settings,
    Source,
    content_hash,
)
from runner.yamlsource import Parsed, parse, render_path

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

YAML_SUFFIXES = (".yaml", ".yml")
_SURROGATES = "\\ud800-\\udfff"  # as written in a pattern of the schema
log = logging.getLogger("runner.config")
Severity = Literal["error", "warning"]


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of config files (draft 2020-12)."""
    text = resources.files("runner").joinpath("scheduler.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    # Imported when first needed: a valid config passes jsonschema-rs alone, and
    # `runner validate` of a small one should not wait for jsonschema's import.
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


@functools.cache
def _fast_check() -> Callable[[Any], bool] | None:
    """jsonschema-rs's ``is_valid`` for the same schema, or None where it is not installed.

    It only ever answers "valid, no messages needed": anything else (invalid, or data it
    cannot take, such as an integer beyond 64 bits) goes to jsonschema, which writes every
    message, so messages, positions and exit codes do not depend on it. It is the same
    draft (2020-12); its regular expressions are at most stricter than Python's (``$``
    does not match before a final newline), which only sends a document to jsonschema.
    """
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        validator = jsonschema_rs.Draft202012Validator(_without_surrogates(schema()))
    except Exception:  # a schema it cannot take: jsonschema alone, as without it
        log.warning("jsonschema-rs cannot compile the schema; validating with jsonschema")
        return None
    check: Callable[[Any], bool] = validator.is_valid
    return check


def _without_surrogates(node: Any) -> Any:
    """The schema with surrogate ranges taken out of its patterns: Rust's regular
    expressions have none, and a value holding a surrogate cannot be passed to
    jsonschema-rs at all (it raises, so jsonschema judges that value)."""
    if isinstance(node, dict):
        return {
            k: v.replace(_SURROGATES, "")
            if k == "pattern" and isinstance(v, str)
            else _without_surrogates(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_without_surrogates(v) for v in node]
    return node


@dataclass
class Report:
    """The outcome of validation: the config when valid, and every problem (errors and warnings)."""

    config: Config | None
    problems: list[Problem] = field(default_factory=list)
    #: What passed every check even when other parts did not: the settings, events and
    #: policies of the files that could be read, less each event with a problem. For
    #: previews (``runner next NAME``) of the valid events of a broken config; never applied.
    partial: Config | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def config_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The YAML files named by ``paths``: files as given, directories' ``*.yaml``/``*.yml``
    (sorted, not recursive, hidden entries such as Kubernetes' ``..data`` skipped).

    Every such name is a config file except a directory: a dangling or looping symbolic
    link is kept, so reading it fails with its name rather than its events vanishing."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.suffix in YAML_SUFFIXES and not p.name.startswith(".") and not p.is_dir()
                )
            )
        else:
            files.append(path)
    return files


def read_config_file(path: Path) -> bytes:
    """The bytes of a regular file; :class:`OSError` for anything else (a FIFO would block
    a reader for ever, a device never ends), without blocking on it."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_file_kind(mode)})")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read()
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    kinds = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
    return kinds.get(stat.S_IFMT(mode), "a directory" if stat.S_ISDIR(mode) else "special")


def load(
    paths: Sequence[str | os.PathLike[str]],
    environ: Mapping[str, str],
    now: datetime,
) -> Config:
    """Load and validate; raise :class:`ConfigError` with every error when invalid."""
    report = validate(paths, environ, now)
    if report.config is None:
        raise ConfigError(report.errors)
    return report.config


def validate(
    paths: Sequence[str | os.PathLike[str]],
    environ: Mapping[str, str],
    now: datetime,
    unset: Severity = "error",
) -> Report:
    """Read and check every file under ``paths``. Never raises for bad input.

    ``unset`` is the severity of a ``${VAR}`` whose variable is not set: an error for what
    will apply the config, a warning for ``runner validate`` (CI has no production secrets).
    """
    files = config_files(paths)
    if not files:
        where = ", ".join(str(p) for p in paths)
        return Report(None, [Problem(where, 0, 0, "no *.yaml or *.yml config file found")])
    with _collector_paused():
        builder = _Builder(environ, now, unset)
        for file in files:
            builder.add_file(file)
        return builder.finish()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Run the block without Python's cyclic garbage collector.

    Parsing a large config allocates hundreds of thousands of objects that all stay
    alive until validation ends; every few hundred allocations the collector would walk
    an ever larger heap for cycles there are none of (about half the time of validating
    10,000 events). It is paused, not turned off: its previous state comes back."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def validate_data(
    data: Mapping[str, Any], source: str, now: datetime, settings: Settings
) -> Report:
    """Validate a declaration made in code (library, API) exactly as a config file would
    be, under ``settings``. Problems have no line; their ``path`` names the field."""
    builder = _Builder({}, now)
    builder.add_document(source, Parsed(dict(data)))
    return builder.finish(settings)


class _Builder:
    """Collects declarations across files, then resolves them into one Config.

    Every problem of every kind comes out of one run: a document with schema problems is
    still resolved, without the declarations those problems make unreadable, so a bad
    cron in one event shows beside a wrong type in another.
    """

    def __init__(
        self, environ: Mapping[str, str], now: datetime, unset: Severity = "error"
    ) -> None:
        self.environ = environ
        self.now = now
        self.unset = unset
        self.problems: list[Problem] = []
        self.documents: list[tuple[str, Parsed]] = []
        self.unknown: list[tuple[str, str]] = []  # (file, rendered path) of unset values

    def add_file(self, path: Path) -> None:
        name = str(path)
        try:
            text = read_config_file(path).decode("utf-8")
        except OSError as exc:
            self.problems.append(Problem(name, 0, 0, f"cannot read: {exc.strerror or exc}"))
            return
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(name, 1, 1, f"not UTF-8 text: {exc.reason}"))
            return
        parsed, problems = parse(text, name, self.environ)
        self.problems.extend(problems)
        if not problems:
            self.add_document(name, parsed)

    def add_document(self, name: str, parsed: Parsed) -> None:
        if parsed.data is None:
            parsed.data = {}
        self.problems.extend(replace(p, severity=self.unset) for p in parsed.unset)
        self.unknown.extend((name, render_path(path)) for path in parsed.unknown)
        non_finite = _non_finite(name, parsed)
        flagged = set(non_finite)
        problems, unreadable = _schema_problems(name, parsed, flagged)
        self.problems.extend([*non_finite.values(), *problems])
        removed = unreadable | {_part(path) for path in flagged}
        readable = _without(parsed.data, removed) if removed else parsed.data
        if isinstance(readable, dict):
            self.documents.append((name, replace(parsed, data=readable)))

    def finish(self, settings: Settings | None = None) -> Report:
        resolver = _Resolver(self.environ, self.now, self.documents, settings)
        config = resolver.resolve()
        found = [*self.problems, *(p for p in resolver.problems if not self._unknown(p))]
        problems = sorted(found)  # by file, line and column, as an editor lists them
        errors = [p for p in problems if p.severity == "error"]
        partial = replace(config, events=self._valid_events(config, errors)) if errors else config
        return Report(None if errors else config, problems, partial)

    def _valid_events(self, config: Config, errors: list[Problem]) -> tuple[EventSpec, ...]:
        """The events of ``config`` that no error is about (by ``events[i]`` in its file)."""
        bad = {(p.file, p.path.split("]", 1)[0]) for p in errors if p.path.startswith("events[")}
        names = {
            event.get("name")
            for file, parsed in self.documents
            for index, event in enumerate(parsed.data.get("events") or [])
            if isinstance(event, dict) and (file, f"events[{index}") in bad
        }
        return tuple(event for event in config.events if event.name not in names)

    def _unknown(self, problem: Problem) -> bool:
        """Whether ``problem`` judges a value that came from an unset variable."""
        return any(
            problem.file == file
            and (problem.path == path or problem.path.startswith((f"{path}.", f"{path}[")))
            for file, path in self.unknown
        )


_GONE = object()


def _without(data: Any, removed: set[tuple[Any, ...]], at: tuple[Any, ...] = ()) -> Any:
    """``data`` without the parts at ``removed``: a mapping drops the key, a list keeps a
    None in the item's place (so the others keep their index, and their line numbers)."""
    if at in removed:
        return _GONE
    if isinstance(data, dict):
        kept = {k: _without(v, removed, (*at, k)) for k, v in data.items()}
        return {k: v for k, v in kept.items() if v is not _GONE}
    if isinstance(data, list):
        items = [_without(v, removed, (*at, i)) for i, v in enumerate(data)]
        return [None if v is _GONE else v for v in items]
    return data


# --- JSON Schema ------------------------------------------------------------------------


def _non_finite(file: str, parsed: Parsed) -> dict[tuple[Any, ...], Problem]:
    """NaN and the infinities, wherever they stand, by path: no field means them, and JSON
    (the database, the API) cannot hold them. JSON Schema's ``number`` admits them."""
    found: dict[tuple[Any, ...], Problem] = {}
    for path in _non_finite_paths(parsed):
        line, col = parsed.mark(path)
        message = f"must be a finite number, not {_at_path(parsed.data, path)}"
        found[path] = Problem(file, line, col, message, render_path(path))
    return found


def _non_finite_paths(parsed: Parsed) -> Iterable[tuple[Any, ...]]:
    """Where NaN and the infinities stand: as the parser saw them, else searched for."""
    if parsed.non_finite is not None:
        yield from parsed.non_finite
        return
    pending: list[tuple[tuple[Any, ...], Any]] = [((), parsed.data)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            yield path
        elif isinstance(value, dict):
            pending.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend(((*path, i), v) for i, v in enumerate(value))


def _at_path(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _valid_fast(data: Any) -> bool:
    check = _fast_check()
    try:
        return check is not None and check(data)
    except Exception:  # whatever it cannot take, jsonschema judges
        return False


def _schema_problems(
    file: str, parsed: Parsed, flagged: set[tuple[Any, ...]]
) -> tuple[list[Problem], set[tuple[Any, ...]]]:
    """The schema's problems (one per place and message: jsonschema reports each missing
    field apart), leaving out those about values of unset variables and those at
    ``flagged`` paths (reported already); and the parts they make unreadable: an unknown
    field itself, else the part of the document (:func:`_part`) the problem is in."""
    if _valid_fast(parsed.data):
        return [], set()
    problems: dict[Problem, None] = {}
    unreadable: set[tuple[Any, ...]] = set()
    for error in _validator().iter_errors(parsed.data):
        path = tuple(error.absolute_path)
        if path in flagged or any(path[: len(u)] == u for u in parsed.unknown):
            continue
        if error.validator == "additionalProperties":
            for problem, key_path in _unknown_fields(file, parsed, error, path):
                problems[problem] = None
                unreadable.add(key_path)
            continue
        unreadable.add(_part(path))
        line, col = parsed.mark(path)
        problems[Problem(file, line, col, _message(error), render_path(path))] = None
    return list(problems), unreadable


def _part(path: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a document a bad value at ``path`` makes unreadable: its declaration
    (``events[2]``), its settings section (``settings.api``), else the whole document."""
    return path[:2] if path[:1] in (("events",), ("cleanup",), ("settings",)) else ()


def _message(error: ValidationError) -> str:
    schema: Any = error.schema
    expected: Any = error.validator_value
    instance: Any = error.instance
    custom = schema.get("x-errors", {}) if isinstance(schema, dict) else {}
    if error.validator in custom:
        return str(custom[error.validator])
    if error.validator == "required":
        missing = [k for k in expected if k not in instance]
        return "missing required field " + ", ".join(f"'{k}'" for k in missing)
    if error.validator == "type":
        return f"must be {_a(expected)}, not {_json_type(instance)}"
    if error.validator == "enum":
        options = ", ".join(str(v) for v in expected)
        return f"{instance!r} is not one of: {options}"
    return error.message


def _unknown_fields(
    file: str, parsed: Parsed, error: ValidationError, path: tuple[Any, ...]
) -> Iterable[tuple[Problem, tuple[Any, ...]]]:
    schema: Any = error.schema
    instance: Any = error.instance
    known = list(schema.get("properties", {}))
    for key in instance:
        if key in known or (key.startswith("x-") and not path):
            continue
        line, col = parsed.key_mark((*path, key)) or parsed.mark(path)
        hint = difflib.get_close_matches(str(key), known, n=1)
        message = f"unknown field '{key}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
        yield Problem(file, line, col, message, render_path((*path, key))), (*path, key)


def _a(types: str | list[str]) -> str:
    names = [types] if isinstance(types, str) else types
    return " or ".join(("an " if t[0] in "aeiou" else "a ") + t for t in names)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping"
    )


# --- Resolution: schema-valid data → specs --------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """A place in one document: the file, its parsed data (for line and column), and the
    path of a field in it."""

    file: str
    parsed: Parsed
    path: tuple[Any, ...] = ()

    def at(self, *fields: Any) -> _Where:
        """The place of a field below this one."""
        return _Where(self.file, self.parsed, (*self.path, *fields))

    def problem(self, message: str, severity: str = "error") -> Problem:
        line, col = self.parsed.mark(self.path)
        return Problem(self.file, line, col, message, render_path(self.path), severity)


class _Resolver:
    """Turns schema-valid documents into specs; reports what a schema cannot see."""

    def __init__(
        self,
        environ: Mapping[str, str],
        now: datetime,
        documents: list[tuple[str, Parsed]],
        settings: Settings | None = None,
    ) -> None:
        self.base_settings = settings
        self.environ = environ
        self.now = now
        self.documents = documents
        self.problems: list[Problem] = []
        self.sources: dict[str, Source] = {}
        # The problems of each schedule judged, by its declared items.
        self._schedules: dict[Any, list[tuple[str | None, str, str]]] = {}

    def problem(self, where: _Where, message: str, severity: str = "error") -> None:
        self.problems.append(where.problem(message, severity))

    def resolve(self) -> Config:
        settings = self._settings()
        events = [
            spec
            for where, data in self._declarations("events")
            if (spec := self._event(where, data, settings)) is not None
        ]
        config_paths = [file for file, _ in self.documents]
        cleanups = [
            policy
            for where, data in self._declarations("cleanup")
            if (policy := self._cleanup(where, data, settings, config_paths)) is not None
        ]
        # Over the specs' own hashes: an event's is kept, and apply needs it again.
        revision = content_hash(
            {
                "settings": asdict(settings),
                "events": [e.spec_hash for e in events],
                "cleanup": [c.spec_hash for c in cleanups],
            }
        )
        return Config(
            settings=settings,
            events=tuple(events),
            cleanups=tuple(cleanups),
            revision=revision,
            files=tuple(config_paths),
            sources=self.sources,
        )

    def _declarations(self, section: str) -> Iterable[tuple[_Where, dict[str, Any]]]:
        """Each declaration of ``section`` across files; duplicate names reported, first wins."""
        first: dict[str, Source] = {}
        for file, parsed in self.documents:
            for index, data in enumerate(parsed.data.get(section) or []):
                if data is None:
                    continue  # unreadable: its schema problems are reported
                where = _Where(file, parsed, (section, index))
                line, col = parsed.mark((section, index, "name"))
                name = data["name"]
                if name in first:
                    message = f"duplicate name '{name}' (first at {first[name]})"
                    self.problem(where.at("name"), message)
                    continue
                first[name] = Source(file, line, col)
                if section == "events":
                    self.sources[name] = first[name]
                yield where, data

    def _settings(self) -> Settings:
        found = [(f, p) for f, p in self.documents if "settings" in p.data]
        if not found and self.base_settings is not None:
            return self.base_settings
        for file, parsed in found[1:]:
            message = f"settings may appear in one file only (already in {found[0][0]})"
            self.problem(_Where(file, parsed, ("settings",)), message)
        raw: dict[str, Any] = dict(found[0][1].data["settings"] or {}) if found else {}
        housekeeper = HousekeeperSettings(**raw.pop("housekeeper", None) or {})
        api_raw = dict(raw.pop("api", None) or {})
        api_raw["allowed_functions"] = tuple(api_raw.get("allowed_functions", ()))
        raw["functions"] = dict(raw.get("functions") or {})
        agents = AgentSettings(**raw.pop("agents", None) or {})
        settings = Settings(
            **raw, housekeeper=housekeeper, api=ApiSettings(**api_raw), agents=agents
        )
        if found:
            self._check_settings(settings, _Where(*found[0], ("settings",)))
        return settings

    def _check_settings(self, settings: Settings, where: _Where) -> None:
        if not _zone_exists(settings.timezone):
            self.problem(where.at("timezone"), _unknown_zone(settings.timezone))
        message = schedules.check_cron(settings.housekeeper.schedule)
        if message:
            self.problem(where.at("housekeeper", "schedule"), message)
        listen = settings.api.listen
        if not listen:
            return
        host, port = split_listen(listen)
        if not 0 < port < 65536:
            message = f"port {port} is out of range: use 1 to 65535"
            self.problem(where.at("api", "listen"), message)
        elif not settings.api.token and not is_loopback(host):
            message = f"the API refuses to listen on {listen} without settings.api.token"
            self.problem(where.at("api", "listen"), message)

    def _event(self, where: _Where, data: dict[str, Any], settings: Settings) -> EventSpec | None:
        schedule = self._schedule(where.at("schedule"), data["schedule"], settings)
        job = self._job(where, data)
        if isinstance(job, FunctionJob) and not self._function_known(job.function, settings):
            message = (
                f"no function is registered as '{job.function}': name it in "
                "settings.functions, or write module:callable"
            )
            self.problem(where.at("function"), message)
            job = None
        retry_raw = data.get("retry")
        retry = settings.default_retry  # frozen: events without a retry block share it
        if retry_raw:
            retry = RetryPolicy(
                attempts=retry_raw.get("attempts", retry.attempts),
                delay=retry_raw.get("delay", retry.delay),
                backoff=retry_raw.get("backoff", retry.backoff),
                max_delay=retry_raw.get("max_delay"),
            )
        misfire = data.get("misfire")
        if schedule is None or job is None:
            return None
        return EventSpec(
            name=data["name"],
            schedule=schedule,
            job=job,
            description=data.get("description", ""),
            module_id=data.get("module_id"),
            timeout=data.get("timeout", settings.execution_timeout),
            retry=retry,
            overlap=data.get("overlap", "forbid"),
            misfire=MisfirePolicy(**misfire) if misfire else _MISFIRE,
            max_executions=data.get("max_executions"),
            enabled=data.get("enabled", True),
            jitter=data.get("jitter", 0),
        )

    def _function_known(self, reference: str, settings: Settings) -> bool:
        """An import path, or a name ``settings.functions`` maps. Declarations made in code
        (``base_settings`` given) are checked by the service, which knows the names its
        program registered."""
        return (
            self.base_settings is not None
            or functions.is_import_path(reference)
            or reference in settings.functions
        )

    def _schedule(
        self, where: _Where, raw: dict[str, Any], settings: Settings
    ) -> dict[str, Any] | None:
        """The normalised schedule, or None when it has errors; problems reported at
        ``where``. Events that declare the same schedule are judged once."""
        try:
            key: Any = tuple(raw.items())
            found = self._schedules.get(key)
        except TypeError:  # a value that is a mapping or a list (`every: {minutes: 15}`)
            key = repr(raw)
            found = self._schedules.get(key)
        if found is None:
            found = self._judge_schedule(raw, settings)
            self._schedules[key] = found
        for field_name, message, severity in found:
            self.problem(where.at(field_name) if field_name else where, message, severity)
        if any(severity == "error" for _, _, severity in found):
            return None
        normal = dict(raw)
        normal.setdefault("timezone", settings.timezone)
        return normal

    def _judge_schedule(
        self, raw: dict[str, Any], settings: Settings
    ) -> list[tuple[str | None, str, str]]:
        """The problems of a schedule: the field each is about (None: the schedule), its
        message and its severity."""
        zone = raw.get("timezone", settings.timezone)
        found: list[tuple[str | None, str, str]] = []
        bad_zone = not _zone_exists(zone)
        if bad_zone and "timezone" in raw:  # else settings.timezone is reported, once
            found.append(("timezone", _unknown_zone(zone), "error"))
        bad_cron = "cron" in raw and (message := schedules.check_cron(raw["cron"]))
        if bad_cron:
            found.append(("cron", str(message), "error"))
        if bad_zone or bad_cron:
            return found  # both reported: a bad zone does not hide a bad cron
        try:
            schedule = schedules.from_spec({**raw, "timezone": zone}, settings.timezone)
        except (ValueError, OverflowError) as exc:
            key = next(k for k in ("at", "start", "every", "cron") if k in raw)
            return [(key, str(exc), "error")]
        if isinstance(schedule, schedules.At) and schedule.at <= self.now:
            message = f"at {schedule.at.isoformat()} is in the past; it will not run"
            found.append((None, message, "warning"))
        found.extend((None, note, "warning") for note in schedules.dst_notes(schedule, self.now))
        return found

    def _job(self, where: _Where, data: dict[str, Any]) -> FunctionJob | CommandJob | None:
        if "function" in data:
            return FunctionJob(data["function"], dict(data.get("parameters", {})))
        command = data["command"]
        shell = data.get("shell", False)
        if isinstance(command, list):
            if shell:
                self.problem(where.at("shell"), "shell: true needs command as one string")
                return None
            argv = tuple(command)
        elif shell:
            argv = (command,)
        else:
            try:
                argv = tuple(_split(command))
            except ValueError as exc:
                self.problem(where.at("command"), f"cannot split command: {exc}")
                return None
            if not argv:
                self.problem(where.at("command"), "command is empty")
                return None
        return CommandJob(
            argv=argv, env=dict(data.get("env", {})), cwd=data.get("cwd"), shell=shell
        )

    def _cleanup(
        self,
        where: _Where,
        data: dict[str, Any],
        settings: Settings,
        config_files: list[str],
    ) -> CleanupSpec | None:
        directory = os.path.normpath(
            os.path.join(os.path.dirname(os.path.abspath(where.file)), data["directory"])
        )
        spec = CleanupSpec(
            name=data["name"],
            directory=directory,
            pattern=data.get("pattern", "*"),
            recursive=data.get("recursive", False),
            exclude=tuple(data.get("exclude", ())),
            retention_days=data.get("retention_days"),
            max_files=data.get("max_files"),
            max_size_mb=data.get("max_size_mb"),
            priority=data.get("priority", 100),
            module_id=data.get("module_id"),
            enabled=data.get("enabled", True),
            dry_run=data.get("dry_run", False),
        )
        database = self.environ.get("RUNNER_DATABASE_URL") or settings.database
        refusal = unsafe_directory(spec, own_files(config_files, database))
        if refusal:
            self.problem(where.at("directory"), refusal)
            return None
        if spec.retention_days is None and spec.max_files is None and spec.max_size_mb is None:
            days = settings.housekeeper.default_retention
            message = (
                "no retention_days, max_files or max_size_mb: "
                f"housekeeper.default_retention ({days:g} days) applies"
            )
            self.problem(where, message, "warning")
        return spec


_MISFIRE = MisfirePolicy()  # the default, shared (frozen) by events without a misfire block


def _split(command: str) -> list[str]:
    """:func:`shlex.split`; a command of plain words (printable ASCII, no quote, no
    backslash: nothing shlex reads specially) is split on its spaces, as shlex would."""
    if command.isascii() and command.isprintable() and not any(c in command for c in "'\"\\"):
        return command.split()
    return shlex.split(command)


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _unknown_zone(name: str) -> str:
    return f"unknown time zone '{name}' (use an IANA name such as Europe/Berlin)"
