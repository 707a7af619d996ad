"""How runner shows things: the JSON shapes of events, executions and cleanup reports
(one shape for the library, the HTTP API and ``runner ... --json``), the CLI's tables,
validation reports (text, JSON, GitHub annotations) and plans.

Pure formatting, no I/O, and cheap to import: the CLI loads it for every command, so it
imports nothing from the database stack (the row types are only named for type checks).
The tables take the JSON shapes, so the CLI shows exactly what the library returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from runner.specs import CommandJob, FunctionJob

if TYPE_CHECKING:
    from runner.config import Report as ValidationReport
    from runner.errors import Problem
    from runner.plan import Plan
    from runner.preview import Preview
    from runner.results import CleanupReport
    from runner.store.sql import EventRow, ExecutionRow

Json = dict[str, Any]


# --- the JSON shapes --------------------------------------------------------------------


def event_json(row: EventRow) -> Json:
    """An event as the API and library return it. Not its whole spec: a command's ``env``
    may hold secrets, and reading the API needs no token."""
    spec, job = row.spec, row.spec.job
    function = job if isinstance(job, FunctionJob) else None
    return {
        "event_id": row.id,
        "name": row.name,
        "description": spec.description,
        "module_id": spec.module_id,
        "function_name": function.function if function else None,
        "parameters": dict(function.parameters) if function else None,
        "command": list(job.argv) if isinstance(job, CommandJob) else None,
        "source": row.source,
        "status": row.display_status,
        "recurring": spec.recurring,
        "schedule": dict(spec.schedule),
        "next_execution": iso(row.next_execution),
        "last_execution": iso(row.last_execution),
        "execution_count": row.execution_count,
        "failure_count": row.failure_count,
        "last_error": row.last_error,
        "max_executions": spec.max_executions,
        "config_revision": row.config_revision,
    }


def execution_json(row: ExecutionRow) -> Json:
    return _times_as_iso(asdict(row))


def cleanup_json(report: CleanupReport) -> Json:
    return _times_as_iso(asdict(report))


def _times_as_iso(data: Json) -> Json:
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in data.items()}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- validation -------------------------------------------------------------------------


def problems(report: ValidationReport, fmt: str) -> str:
    """A validation report as ``text`` (one line per problem, then a verdict), ``json`` or
    ``github`` (workflow commands, so problems show on the pull request's lines)."""
    if fmt == "json":
        return json.dumps(_validation_json(report), indent=2)
    if fmt == "github":
        return "\n".join(github_annotation(p) for p in report.problems)
    lines = [p.render() for p in report.problems]
    if report.config:
        c = report.config
        counts = f"{len(c.events)} events, {len(c.cleanups)} cleanup policies"
        lines.append(f"ok: {counts} in {len(c.files)} files")
    else:
        lines.append(f"invalid: {len(report.errors)} errors, {len(report.warnings)} warnings")
    return "\n".join(lines)


def _validation_json(report: ValidationReport) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "valid": not report.errors,
        "problems": [problem_json(p) for p in report.problems],
    }
    if report.config:
        config = report.config
        summary |= {
            "events": len(config.events),
            "cleanup": len(config.cleanups),
            "revision": config.revision,
        }
    return summary


# --- plans ------------------------------------------------------------------------------


def plan_text(plan: Plan, zones: Mapping[str, tzinfo]) -> str:
    """A plan for people: each change, under an update each value ``old → new``, under a
    created or rescheduled event its next fire times (in ``zones[name]`` and UTC)."""
    lines = []
    for change in plan.changes:
        lines.append(change.render())
        lines.extend(f"    {v.field}: {_value(v.old)} → {_value(v.new)}" for v in change.values)
        zone = zones.get(change.name)
        if change.fires and zone is not None:
            lines.append("    next: " + fire_time(change.fires[0], zone))
            lines.extend("          " + fire_time(f, zone) for f in change.fires[1:])
    lines.extend(f"! conflict: {conflict}" for conflict in plan.conflicts)
    return "\n".join(lines)


def plan_json(plan: Plan) -> dict[str, Any]:
    """A plan for tools: every change with its old and new values and next fire times."""
    return {
        "changes": [
            {
                "action": c.action,
                "kind": c.kind,
                "name": c.name,
                "reschedule": c.reschedule,
                "values": [{"field": v.field, "old": v.old, "new": v.new} for v in c.values],
                "next_fires": [_utc_text(f) for f in c.fires],
            }
            for c in plan.changes
        ],
        "conflicts": list(plan.conflicts),
        "refused_empty": plan.refused_empty,
        "counts": {a: plan.count(a) for a in ("create", "update", "delete")},
    }


def _value(value: Any) -> str:
    """A config value as it would be written: JSON, ``(absent)`` for a missing side."""
    return "(absent)" if value is None else json.dumps(value, sort_keys=True)


def _utc_text(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%SZ}"


def problem_json(p: Problem) -> dict[str, Any]:
    return {
        "file": p.file,
        "line": p.line,
        "col": p.col,
        "severity": p.severity,
        "path": p.path,
        "message": p.message,
    }


def github_annotation(p: Problem) -> str:
    """A GitHub Actions workflow command, so the problem shows on the pull request's line."""
    level = "error" if p.severity == "error" else "warning"
    message = (
        (p.message + (f" (at {p.path})" if p.path else "")).replace("%", "%25").replace("\n", "%0A")
    )
    file = p.file.replace(",", "%2C").replace(":", "%3A")
    return f"::{level} file={file},line={p.line},col={p.col},title=runner validate::{message}"


# --- tables -----------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]], empty: str = "no events") -> str:
    """Left-aligned columns two spaces apart; ``empty`` when there are no rows."""
    if not rows:
        return empty
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


EVENT_HEADER = ["NAME", "STATUS", "SOURCE", "NEXT (UTC)", "LAST (UTC)", "RUNS", "SCHEDULE"]
EXECUTION_HEADER = [
    "EVENT",
    "SCHEDULED (UTC)",
    "TRY",
    "TRIGGER",
    "OUTCOME",
    "DURATION",
    "RUNNER",
    "ERROR",
]
CLEANUP_HEADER = [
    "POLICY",
    "SCANNED",
    "MATCHED",
    "DELETED",
    "FREED",
    "ERRORS",
    "SECONDS",
    "DIRECTORY",
]


def event_table(events: list[Json]) -> str:
    return table(EVENT_HEADER, [_event_cells(e) for e in events])


def _event_cells(event: Json) -> list[str]:
    schedule = " ".join(f"{k}={v}" for k, v in event["schedule"].items())
    return [
        event["name"],
        event["status"],
        event["source"],
        when(event["next_execution"]),
        when(event["last_execution"]),
        str(event["execution_count"]),
        schedule,
    ]


def execution_table(executions: list[Json]) -> str:
    return table(EXECUTION_HEADER, [_execution_cells(e) for e in executions], "no executions")


def _execution_cells(execution: Json) -> list[str]:
    duration = execution["duration"]
    error = (execution["error"] or "").replace("\n", " ")[:60]
    return [
        execution["event"],
        when(execution["scheduled_time"]),
        str(execution["attempt"]),
        execution["trigger"],
        execution["outcome"],
        f"{duration:.3f}s" if duration is not None else "-",
        execution["runner_id"] or "-",
        error,
    ]


def config_line(state: dict[str, Any]) -> str:
    """The applied config's revision, who applied it, and its last error, under the list."""
    revision = (state.get("revision") or "none")[:12]
    applied_by = f" (applied by {state['applied_by']})" if state.get("applied_by") else ""
    error = f"; last error: {state['error']}" if state.get("error") else ""
    return f"config revision {revision}{applied_by}{error}"


def cleanup_table(reports: list[Json]) -> str:
    """One row per policy, then each error and each file a dry run would delete."""
    rows = [
        [
            r["policy"] + (" (dry run)" if r["dry_run"] else ""),
            str(r["scanned"]),
            str(r["matched"]),
            str(r["deleted"]),
            size(r["bytes_freed"]),
            str(len(r["errors"])),
            f"{r['duration']:.3f}",
            r["directory"],
        ]
        for r in reports
    ]
    lines = [table(CLEANUP_HEADER, rows, "no cleanup policies")]
    for r in reports:
        lines += [f"{r['policy']}: error: {e}" for e in r["errors"]]
        lines += [f"{r['policy']}: would delete {name}" for name in r["would_delete"]]
    return "\n".join(lines)


def size(count: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB`` … ``GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def when(value: str | None) -> str:
    """An ISO time of the JSON shapes (UTC) as the tables show it, ``-`` for none."""
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def fire_time(fire: datetime, zone: tzinfo) -> str:
    """A fire time in the event's zone and in UTC, as ``runner next`` prints it."""
    local = fire.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S %Z (%z)}  {fire:%Y-%m-%dT%H:%M:%SZ}"


def schedule_preview(shown: Preview, name: str | None = None) -> str:
    """``runner next``: what the schedule (of event ``name``) is, one line per fire (as
    :func:`fire_time`), then what each clock change on the way does to it."""
    from runner import preview

    lines = [f"{name}: " * bool(name) + preview.title(shown.schedule)]
    lines.extend(fire_time(fire, shown.zone) for fire in shown.fires)
    if not shown.fires:
        lines.append("no fire times")
    if shown.changes:
        lines.append("clock changes:")
        lines.extend(f"  {preview.change_in_words(change)}" for change in shown.changes)
    return "\n".join(lines)
