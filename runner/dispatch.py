"""What to do with an event that is due, and with one whose run has ended. Pure.

:func:`decide` turns one claimed event into execution records (one that runs, and the
occurrences that were skipped, missed or coalesced, so none vanishes silently) and its
next state. :func:`settle` decides an event's state after a run ends (retry, completion).
Neither reads the clock or the database: the store applies what they return.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from runner import occurrences
from runner.results import EventStatus, JobOutcome, Outcome, Trigger
from runner.retry import next_retry
from runner.specs import EventSpec

# How many occurrences one catch-up records individually; later ones are skipped over.
MAX_BACKLOG = 1000
STILL_RUNNING = "previous run still running (overlap: forbid)"


@dataclass(frozen=True)
class DueEvent:
    """A claimed event: its spec and the runtime state the decision needs."""

    id: int
    spec: EventSpec
    next_execution: datetime | None
    execution_count: int = 0
    running: int = 0
    retry_at: datetime | None = None
    retry_scheduled_time: datetime | None = None
    retry_attempt: int | None = None
    triggered_at: datetime | None = None


def _trace_id() -> str:
    """16 random bytes in hex, the form of a W3C trace id (cheaper than a UUID object)."""
    return os.urandom(16).hex()


@dataclass(frozen=True)
class Record:
    """An execution row to write. ``outcome`` is ``running`` for the run to start."""

    scheduled_time: datetime
    outcome: Outcome
    trigger: Trigger = "schedule"
    attempt: int = 1
    error: str | None = None
    # The run's trace_session_id (module design): in its record, its logs, its context.
    trace_session_id: str = field(default_factory=_trace_id, compare=False)
    # When a retry is due (its scheduled_time stays the occurrence it retries).
    retry_at: datetime | None = None

    @property
    def start_at(self) -> datetime:
        """The earliest instant the run may start: its retry's time, else its scheduled
        time (a manual run's is the moment it was asked for)."""
        return self.retry_at or self.scheduled_time


@dataclass(frozen=True)
class Decision:
    """The records to write and the event's new state. ``next_execution`` is the new value."""

    records: tuple[Record, ...]
    next_execution: datetime | None
    status: EventStatus = "active"
    clear_retry: bool = False
    clear_trigger: bool = False
    replace_running: bool = False

    @property
    def run(self) -> Record | None:
        return next((r for r in self.records if r.outcome == "running"), None)


def decide(event: DueEvent, due_by: datetime, now: datetime | None = None) -> Decision:
    """Handle the most urgent thing of ``event`` due by ``due_by``: a manual trigger, a
    retry, or the schedule.

    One claim handles one of them; what else is due stays due for the next claim. How late
    an occurrence is (for the misfire grace) is judged at ``now`` (default ``due_by``):
    one claimed a little ahead of its time is not late at all.
    """
    now = due_by if now is None else now
    if event.triggered_at is not None:
        run = _start(event, Record(event.triggered_at, "running", "manual"))
        return _with_run(event, run, event.next_execution, clear_trigger=True)
    if event.retry_at is not None and event.retry_at <= due_by:
        scheduled = event.retry_scheduled_time or event.retry_at
        attempt = event.retry_attempt or 2
        record = Record(scheduled, "running", "retry", attempt, retry_at=event.retry_at)
        return _with_run(event, _start(event, record), event.next_execution, clear_retry=True)
    return _scheduled(event, due_by, now)


def _scheduled(event: DueEvent, due_by: datetime, now: datetime) -> Decision:
    spec = event.spec
    due = _due_occurrences(event, due_by)
    if not due:
        return Decision((), event.next_execution)
    grace = spec.misfire.grace
    if spec.misfire.policy == "all":
        # Each occurrence runs; the next one stays due for the next claim.
        return _with_run(event, _start(event, Record(due[0], "running")), _next(spec, due[0]))
    latest, backlog = due[-1], due[:-1]
    following = _next(spec, max(latest, due_by))
    if spec.misfire.policy == "skip":
        records = [_missed_or_coalesced(o, now, grace) for o in backlog]
        if (now - latest).total_seconds() > grace:  # negative when claimed ahead
            records.append(Record(latest, "missed", error=_late(latest, now)))
            return Decision(tuple(records), following, _status(following))
    else:
        records = [
            Record(o, "coalesced", error=f"coalesced into the run of {latest.isoformat()}")
            for o in backlog
        ]
    decision = _with_run(event, _start(event, Record(latest, "running")), following)
    return replace(decision, records=(*records, *decision.records)) if records else decision


def _due_occurrences(event: DueEvent, now: datetime) -> list[datetime]:
    """The due occurrences, oldest first. Past :data:`MAX_BACKLOG` the rest are skipped
    over, but the latest due one still comes last: it is the one coalesce and skip run."""
    due: list[datetime] = []
    current = event.next_execution
    while current is not None and current <= now and len(due) < MAX_BACKLOG:
        due.append(current)
        current = occurrences.next_fire(event.spec, current)
    if current is not None and current <= now:
        due.append(_latest_due(event.spec, current, now))
    return due


def _latest_due(spec: EventSpec, known: datetime, now: datetime) -> datetime:
    """The last occurrence at or before ``now``, given ``known``, one that is."""
    latest, window = known, timedelta(seconds=1)
    while now - window > known:  # look back from now, doubling, instead of stepping forward
        probe = occurrences.next_fire(spec, now - window)
        if probe is not None and probe <= now:
            latest = probe
            break
        window *= 2
    while (following := occurrences.next_fire(spec, latest)) is not None and following <= now:
        latest = following
    return latest


def _start(event: DueEvent, record: Record) -> Record:
    """The run, or a skipped record when overlap forbids it."""
    if event.running and event.spec.overlap == "forbid":
        return Record(
            record.scheduled_time, "skipped", record.trigger, record.attempt, STILL_RUNNING
        )
    return record


def _with_run(
    event: DueEvent,
    record: Record,
    next_execution: datetime | None,
    clear_retry: bool = False,
    clear_trigger: bool = False,
) -> Decision:
    """A decision around ``record``. A run that starts supersedes a pending retry."""
    spec = event.spec
    started = record.outcome == "running"
    # max_executions counts occurrences run; retries and manual runs do not use it up.
    counted = started and record.trigger == "schedule"
    if counted and spec.max_executions and event.execution_count + 1 >= spec.max_executions:
        next_execution = None
    return Decision(
        (record,),
        next_execution,
        _status(next_execution, started),
        clear_retry=clear_retry or started,
        clear_trigger=clear_trigger,
        replace_running=started and event.running > 0 and spec.overlap == "replace",
    )


def _status(next_execution: datetime | None, started: bool = False) -> EventStatus:
    """``active`` while anything is to come; a run in progress settles the rest."""
    return "active" if next_execution is not None or started else "completed"


def _next(spec: EventSpec, after: datetime) -> datetime | None:
    return occurrences.next_fire(spec, after)


def _late(occurrence: datetime, now: datetime) -> str:
    return f"missed: {(now - occurrence).total_seconds():.0f}s late, beyond the misfire grace"


def _missed_or_coalesced(occurrence: datetime, now: datetime, grace: float) -> Record:
    if (now - occurrence).total_seconds() > grace:
        return Record(occurrence, "missed", error=_late(occurrence, now))
    return Record(occurrence, "coalesced", error="coalesced into a later run")


@dataclass(frozen=True)
class Settlement:
    """An event's state after one of its runs ended: a retry, or else the status it takes
    if nothing more is to come (no next occurrence, no pending retry)."""

    failed: bool
    retry_at: datetime | None = None
    retry_attempt: int | None = None
    final_status: EventStatus = "completed"


def settle(spec: EventSpec, outcome: JobOutcome, attempt: int, finished_at: datetime) -> Settlement:
    """After a run ends with ``outcome``: schedule a retry, or say how the event ends.

    Failures, timeouts, interruptions and crashes are retried by the event's policy. A
    recurring event keeps its schedule whatever happens (it ends ``completed`` only when
    it has no next occurrence, e.g. after ``max_executions``); a one-time event ends
    ``completed`` when it succeeded and ``failed`` when its last attempt failed.
    """
    failed = outcome != "succeeded"
    retry_at = next_retry(spec.retry, attempt, finished_at) if failed else None
    if retry_at is not None:
        return Settlement(True, retry_at, attempt + 1)
    return Settlement(
        failed, final_status="failed" if failed and not spec.recurring else "completed"
    )
