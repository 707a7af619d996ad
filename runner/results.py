"""The values runs and housekeeping produce, and the words for their states.

Pure data, imported by the store, the loop, the jobs and the housekeeper alike, so the
database layer depends on these values and not on the code that makes them. Outcomes and
statuses are ``Literal`` types: a misspelt state is a type error, not a silent mismatch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

log = logging.getLogger("runner.housekeeper")

#: How a job's run ended.
JobOutcome = Literal["succeeded", "failed", "timed_out", "interrupted"]
#: What became of an occurrence: a run in progress, how a run ended, or why none ran.
Outcome = Literal[
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "interrupted",
    "skipped",
    "missed",
    "coalesced",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
#: An event's lifecycle as stored (``paused`` is shown for a paused active event).
EventStatus = Literal["active", "completed", "failed", "cancelled", "removed"]
#: Why a run started.
Trigger = Literal["schedule", "retry", "manual"]
#: Who owns an event or a policy: the config files, or the API and library.
Source = Literal["config", "user"]

#: Errors one cleanup report keeps; the rest are only logged.
MAX_REPORTED = 100


@dataclass(frozen=True)
class JobResult:
    """How one run of a job ended: its outcome, return value (as JSON) and error."""

    outcome: JobOutcome
    result: Any = None
    error: str | None = None


@dataclass
class CleanupReport:
    """What one policy run did (or, in a dry run, would have done)."""

    policy: str
    directory: str
    dry_run: bool
    scanned: int = 0
    matched: int = 0
    deleted: int = 0
    bytes_freed: int = 0  # of deleted files that had no other hard link
    errors: list[str] = field(default_factory=list)
    would_delete: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    duration: float = 0.0

    def error(self, message: str) -> None:
        """Note a problem: kept in the report (up to :data:`MAX_REPORTED`) and logged."""
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(message)
        log.warning("cleanup %s: %s", self.policy, message)
