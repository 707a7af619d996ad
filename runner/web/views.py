"""What each page shows, read from the store through the service's own views.

An event is shown as :func:`runner.service.event_json` shows it to the API, plus what its
schedule and history say; never its command's ``env`` or ``cwd``, which may hold secrets
and which the API does not show either (reading needs no token).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runner import occurrences, schedules
from runner.service import SchedulerService, event_json
from runner.specs import CommandJob, EventSpec, FunctionJob
from runner.store.sql import EventFilter, EventRow, ExecutionRow
from runner.web import timeline, words

STATUSES = ("active", "paused", "completed", "failed", "cancelled")
OUTCOMES = ("succeeded", "failed", "timed_out", "interrupted", "skipped", "missed", "coalesced")
TIMELINE_ROWS = 500  # newest records read per event for the timeline
PAGE = 20  # history rows per page
NEXT_FIRES = 10


@dataclass(frozen=True)
class Times:
    """An instant in the event's zone and in UTC."""

    local: str
    utc: str
    iso: str

    @classmethod
    def of(cls, t: datetime | None, spec: EventSpec) -> Times | None:
        if t is None:
            return None
        return cls(words.local(t, words.zone_of(spec.schedule)), words.utc(t), t.isoformat())


@dataclass(frozen=True)
class EventLine:
    """One event on the overview."""

    event: dict[str, Any]
    schedule: str
    next_fire: Times | None
    last: ExecutionRow | None
    running: bool
    marks: list[timeline.Mark]
    summary: str


@dataclass(frozen=True)
class Overview:
    lines: list[EventLine]
    total: int
    modules: list[str]
    config: dict[str, Any]
    window: timeline.Window
    ticks: list[timeline.Tick]
    changes: list[timeline.ClockChange]
    filters: dict[str, str]
    statuses: tuple[str, ...] = STATUSES
    outcomes: tuple[str, ...] = OUTCOMES


@dataclass(frozen=True)
class HistoryLine:
    row: ExecutionRow
    scheduled: Times | None
    duration: str
    output: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventPage:
    event: dict[str, Any]
    spec: dict[str, Any]
    schedule: str
    next_fires: list[Times]
    dst_notes: list[str]
    history: list[HistoryLine]
    page: int
    older: bool


async def overview(
    service: SchedulerService, now: datetime, status: str | None, module_id: str | None
) -> Overview:
    """Every event matching the filters (as the API filters), with its timeline."""
    store = service.store
    everything = await store.list_events()
    rows = await store.list_events(EventFilter(status, module_id))
    window = timeline.Window.around(now)
    lines = [await _line(service, row, window) for row in rows]
    zones = [str(words.zone_of(row.spec.schedule)) for row in rows]
    return Overview(
        lines=lines,
        total=len(everything),
        modules=sorted({r.spec.module_id for r in everything if r.spec.module_id}),
        config=await store.config_state(),
        window=window,
        ticks=timeline.ticks(window),
        changes=timeline.clock_changes(window, zones),
        filters={"status": status or "", "module_id": module_id or ""},
    )


async def _line(service: SchedulerService, row: EventRow, window: timeline.Window) -> EventLine:
    history = await service.store.history(row.name, TIMELINE_ROWS)
    zone = words.zone_of(row.spec.schedule)
    past = timeline.past_marks(window, history, zone)
    coming = timeline.future_marks(window, row.spec, zone) if row.display_status == "active" else []
    finished = next((h for h in history if h.outcome != "running"), None)
    return EventLine(
        event=event_json(row),
        schedule=words.schedule(row.spec.schedule),
        next_fire=Times.of(row.next_execution, row.spec),
        last=finished,
        running=any(h.outcome == "running" for h in history),
        marks=past + coming,
        summary=_summary(past, coming, len(history) == TIMELINE_ROWS),
    )


def _summary(past: list[timeline.Mark], coming: list[timeline.Mark], truncated: bool) -> str:
    """What the timeline row shows, in words, for those who do not see it."""
    counts = Counter(m.kind for m in past)
    done = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(counts.items()))
    latest = " (the latest shown)" if truncated else ""
    bands = [m.label for m in coming if m.kind == "band"]
    fires = bands[0] if bands else words.count(len(coming), "fire")
    hours = timeline.HOURS
    return f"Last {hours} h: {done or 'no occurrences'}{latest}. Next {hours} h: {fires}."


async def event_page(
    service: SchedulerService, name: str, now: datetime, page: int
) -> EventPage | None:
    """One event: its spec, next fires and a page of its history (None if there is none)."""
    row = await service.store.get_event(name)
    if row is None:
        return None
    offset = (page - 1) * PAGE
    history = await service.store.history(name, PAGE + 1, offset)
    spec = row.spec
    fires = timeline.fires(spec, now, None, NEXT_FIRES) if row.display_status == "active" else []
    return EventPage(
        event=event_json(row),
        spec=shown_spec(spec),
        schedule=words.schedule(spec.schedule),
        next_fires=[t for t in (Times.of(f, spec) for f in fires) if t is not None],
        dst_notes=schedules.dst_notes(occurrences.schedule_of(spec), now),
        history=[_history_line(h, spec) for h in history[:PAGE]],
        page=page,
        older=len(history) > PAGE,
    )


def shown_spec(spec: EventSpec) -> dict[str, Any]:
    """The spec as the page shows it: a command's ``env`` and ``cwd`` left out."""
    shown = spec.to_json()
    job: dict[str, Any] = shown.pop("job")
    if isinstance(spec.job, FunctionJob):
        shown["function"] = job["function"]
        shown["parameters"] = job["parameters"]
    elif isinstance(spec.job, CommandJob):
        shown["command"] = job["argv"]
        shown["shell"] = job["shell"]
    return shown


def _history_line(row: ExecutionRow, spec: EventSpec) -> HistoryLine:
    output = {}
    if isinstance(row.result, dict):
        output = {k: str(row.result[k]) for k in ("stdout", "stderr") if row.result.get(k)}
    return HistoryLine(
        row=row,
        scheduled=Times.of(row.scheduled_time, spec),
        duration=words.duration(row.duration),
        output=output,
    )


async def cleanup_page(service: SchedulerService, limit: int = 50) -> dict[str, Any]:
    """The cleanup policies and the latest housekeeping reports."""
    policies = await service.list_cleanups()
    reports = await service.store.cleanup_reports(limit)
    return {"policies": policies.data or [], "reports": reports}


def hours_ago(now: datetime, then: datetime | None) -> str:
    """``then`` relative to ``now``, e.g. ``5 min ago``; empty for None."""
    if then is None:
        return ""
    seconds = (now - then) / timedelta(seconds=1)
    if seconds < 90:
        return f"{max(0, int(seconds))} s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)} min ago"
    return f"{int(seconds // 3600)} h ago"
