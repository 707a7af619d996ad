"""The exceptions runner raises. Everything derives from :class:`RunnerError`."""

from __future__ import annotations

from dataclasses import dataclass, field


class RunnerError(Exception):
    """Base of every error runner raises on purpose."""


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about a config: where it is, which field, and what is wrong.

    ``line`` and ``col`` are 1-based; 0 means "the file as a whole".
    ``path`` is the field path inside the document, e.g. ``events[2].schedule.cron``.
    """

    file: str
    line: int
    col: int
    message: str
    path: str = ""
    severity: str = field(default="error", compare=False)

    def render(self) -> str:
        """``file:line:col: severity: message (at path)``, the format editors and CI understand."""
        where = f" (at {self.path})" if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}{where}"


class ConfigError(RunnerError):
    """A config that cannot be applied. Carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(p.render() for p in self.problems))


class StoreError(RunnerError):
    """The database failed. The driver's exception is kept as ``__cause__``."""


class NotFound(RunnerError):
    """A named event, execution or policy does not exist."""


class Conflict(RunnerError):
    """The request contradicts the current state (e.g. deleting a config-owned event)."""


class Invalid(RunnerError):
    """Input (to the library, the API, the CLI) that does not pass validation."""
