"""Typed, frozen specs: what a config (or the library) declares, with every default resolved.

Specs are plain data. They serialise to canonical JSON (``to_json``), which is what the
database stores and what the content hashes are computed from, so a spec read back from
the database is equal to the one that was written.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Overlap = Literal["forbid", "allow", "replace"]
MisfireMode = Literal["coalesce", "skip", "all"]


# json.dumps with these options, made once (dumps makes an encoder at every call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def content_hash(value: Any) -> str:
    """A stable SHA-256 over the canonical JSON of ``value``."""
    return hashlib.sha256(_CANONICAL.encode(value).encode()).hexdigest()


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` retries after the first run; the n-th waits ``delay * backoff**(n-1)``."""

    attempts: int = 3
    delay: float = 300.0
    backoff: float = 2.0
    max_delay: float | None = None


@dataclass(frozen=True)
class MisfirePolicy:
    """What to do with occurrences more than ``grace`` seconds late."""

    policy: MisfireMode = "coalesce"
    grace: float = 300.0


@dataclass(frozen=True)
class FunctionJob:
    """Call ``module:callable`` with ``parameters`` as keyword arguments."""

    function: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandJob:
    """Run ``argv`` without a shell (or ``argv[0]`` through ``/bin/sh -c`` when ``shell``)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    shell: bool = False


Job = FunctionJob | CommandJob


@dataclass(frozen=True)
class EventSpec:
    """One scheduled job, as declared. ``schedule`` is the normalised schedule mapping:
    exactly one of ``cron``/``every``/``at``, plus ``timezone`` and, for ``every``, ``start``."""

    name: str
    schedule: Mapping[str, Any]
    job: Job
    description: str = ""
    module_id: str | None = None
    timeout: float | None = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    overlap: Overlap = "forbid"
    misfire: MisfirePolicy = field(default_factory=MisfirePolicy)
    max_executions: int | None = None
    enabled: bool = True
    jitter: int = 0

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (stored in the database, hashed for change detection):
        every field, the job with its ``kind``. Written out field by field, as it is built
        for every event of a config."""
        job = self.job
        job_json: dict[str, Any]
        if isinstance(job, FunctionJob):
            job_json = {"kind": "function", "function": job.function}
            job_json["parameters"] = _plain(job.parameters)
        else:
            job_json = {"kind": "command", "argv": _plain(job.argv), "env": _plain(job.env)}
            job_json |= {"cwd": job.cwd, "shell": job.shell}
        retry, misfire = self.retry, self.misfire
        return {
            "name": self.name,
            "schedule": _plain(self.schedule),
            "job": job_json,
            "description": self.description,
            "module_id": self.module_id,
            "timeout": self.timeout,
            "retry": {
                "attempts": retry.attempts,
                "delay": retry.delay,
                "backoff": retry.backoff,
                "max_delay": retry.max_delay,
            },
            "overlap": self.overlap,
            "misfire": {"policy": misfire.policy, "grace": misfire.grace},
            "max_executions": self.max_executions,
            "enabled": self.enabled,
            "jitter": self.jitter,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventSpec:
        """The inverse of :meth:`to_json`."""
        job_data = dict(data["job"])
        kind = job_data.pop("kind")
        job: Job
        if kind == "function":
            job = FunctionJob(**job_data)
        else:
            job_data["argv"] = tuple(job_data["argv"])
            job = CommandJob(**job_data)
        fields = dict(data)
        fields.update(
            job=job,
            retry=RetryPolicy(**data["retry"]),
            misfire=MisfirePolicy(**data["misfire"]),
        )
        return cls(**fields)

    @functools.cached_property
    def spec_hash(self) -> str:
        """Changes whenever anything in the spec changes."""
        return content_hash(self.to_json())

    @functools.cached_property
    def schedule_hash(self) -> str:
        """Changes only when the fire times change (schedule or jitter)."""
        return content_hash({"schedule": dict(self.schedule), "jitter": self.jitter})

    @functools.cached_property
    def schedule_key(self) -> Hashable:
        """The schedule mapping as a hashable value (mappings as their sorted items), made
        once per spec: what its schedule object is cached by
        (:func:`runner.occurrences.schedule_of`)."""
        return _frozen(self.schedule)

    @property
    def recurring(self) -> bool:
        return "at" not in self.schedule


@dataclass(frozen=True)
class CleanupSpec:
    """One housekeeping policy. At least one limit is set (the default retention fills in)."""

    name: str
    directory: str
    pattern: str = "*"
    recursive: bool = False
    exclude: tuple[str, ...] = ()
    retention_days: float | None = None
    max_files: int | None = None
    max_size_mb: float | None = None
    priority: int = 100
    module_id: str | None = None
    enabled: bool = True
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(asdict(self))
        return plain

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CleanupSpec:
        fields = dict(data)
        fields["exclude"] = tuple(fields.get("exclude", ()))
        return cls(**fields)

    @functools.cached_property
    def spec_hash(self) -> str:
        return content_hash(self.to_json())


@dataclass(frozen=True)
class HousekeeperSettings:
    enabled: bool = True
    schedule: str = "0 3 * * *"
    default_retention: float = 30
    dry_run: bool = False
    concurrent_cleanups: int = 3
    report_enabled: bool = True


@dataclass(frozen=True)
class ApiSettings:
    listen: str | None = None
    token: str | None = None
    allowed_functions: tuple[str, ...] = ()

    def function_refusal(self, function_name: str) -> str | None:
        """Why a remote caller (HTTP API, agent) may not name ``function_name``, or None."""
        if function_name in self.allowed_functions:
            return None
        return f"{function_name} is not in settings.api.allowed_functions"


@dataclass(frozen=True)
class AgentSettings:
    """What the agent tools (MCP) may do beyond the HTTP API's rules."""

    allow_cleanup: bool = False


@dataclass(frozen=True)
class Settings:
    """Process-wide settings; the defaults are those of the contract."""

    timezone: str = "UTC"
    database: str = "sqlite:///runner.db"
    check_interval: float = 1.0
    max_concurrent_executions: int = 10
    execution_timeout: float = 300
    retry_failed_events: bool = True
    max_retry_attempts: int = 3
    retry_delay: float = 300
    retention_days: float = 30
    auto_cleanup_enabled: bool = True
    allow_past_events: bool = False
    shutdown_grace: float = 20
    lease_seconds: float = 30
    housekeeper: HousekeeperSettings = field(default_factory=HousekeeperSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    agents: AgentSettings = field(default_factory=AgentSettings)
    # Registered names of job functions: name -> module:callable.
    functions: Mapping[str, str] = field(default_factory=dict)

    @functools.cached_property
    def default_retry(self) -> RetryPolicy:
        attempts = self.max_retry_attempts if self.retry_failed_events else 0
        return RetryPolicy(attempts=attempts, delay=self.retry_delay)


@dataclass(frozen=True)
class Source:
    """Where a declaration came from, for messages."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Config:
    """A whole, valid config: what reconcile applies."""

    settings: Settings
    events: tuple[EventSpec, ...] = ()
    cleanups: tuple[CleanupSpec, ...] = ()
    revision: str = ""
    files: tuple[str, ...] = ()
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        return not self.events and not self.cleanups

    def summary(self) -> Config:
        """This config without its declarations and where they came from: what a running
        runner keeps once they are in the database (settings, revision, files). Ten
        thousand events are tens of MiB that would otherwise stay for the process's life."""
        return replace(self, events=(), cleanups=(), sources={})


_LEAVES = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """Tuples to lists and mappings to dicts, recursively, so JSON round-trips compare equal."""
    if type(value) in _LEAVES:  # most values: the exact type is the quickest test
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _frozen(value: Any) -> Hashable:
    """``value`` (JSON data) as a hashable value: equal data, equal values."""
    if isinstance(value, Mapping):
        return tuple(sorted((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value  # type: ignore[no-any-return]
