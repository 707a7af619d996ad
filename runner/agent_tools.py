"""The module design's six agent functions as plain data: name, description, JSON Schema
of the input, and the :class:`~runner.service.SchedulerService` call behind it.

Hand :data:`TOOLS` to any function-calling framework, or serve them over MCP
(:mod:`runner.mcp_server`). :func:`call` is the one way to run a tool: it checks the
input against the tool's schema, applies the tool's refusals (the same rules as the
HTTP API, read from the service's current settings), then calls the service. Every
answer is the service's :class:`~runner.result.Result`; its ``to_json()`` is the body
the HTTP API would answer.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from runner import config as configs
from runner.result import Result
from runner.service import UNITS, SchedulerService

Arguments = Mapping[str, Any]


@dataclass(frozen=True)
class AgentTool:
    """One tool. ``refuse`` says why the caller may not do this under the service's
    settings (None: allowed); it sees the arguments before they are checked, so that a
    forbidden request is refused as such. ``run`` is the service call, given valid
    arguments."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    run: Callable[[SchedulerService, Arguments], Awaitable[Result[Any]]]
    refuse: Callable[[SchedulerService, Arguments], str | None] = lambda _service, _args: None
    read_only: bool = False


async def call(service: SchedulerService, name: str, arguments: Arguments | None) -> Result[Any]:
    """Run tool ``name`` with ``arguments``: invalid input is ``validation_error``, a
    refusal ``forbidden``, an unknown tool ``not_found``; else the service's Result."""
    tool = BY_NAME.get(name)
    if tool is None:
        return Result.fail(
            "not_found", f"no tool named {name!r}; the tools are {', '.join(BY_NAME)}"
        )
    arguments = dict(arguments or {})
    refusal = tool.refuse(service, arguments)
    if refusal:
        return Result.fail("forbidden", refusal)
    problems = _problems(tool.input_schema, arguments)
    if problems:
        return Result.fail("validation_error", "; ".join(problems))
    return await tool.run(service, arguments)


def prose(text: str) -> str:
    """A paragraph written across source lines, as one line (for a tool's description)."""
    return " ".join(text.split())


def _problems(schema: Mapping[str, Any], arguments: Arguments) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
    return [f"{'.'.join(str(p) for p in e.path) or 'arguments'}: {e.message}" for e in errors]


# --- the config schema's pieces the tools share ------------------------------------------


@functools.cache
def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = configs.schema()["$defs"]
    return defs


def _name(what: str) -> dict[str, Any]:
    return {**_defs()["name"], "description": what}


# --- schedule_task ------------------------------------------------------------------------

SCHEDULE_TASK = prose("""Schedule a task: a call of one Python function at a time or on a schedule.
The function must be one the operator listed in settings.api.allowed_functions
(written module:callable); any other function, and any shell command, is refused
(code "forbidden"). One-time: give next_execution (and leave recurring false).
Recurring: set recurring true and interval_type to a unit (seconds, minutes, hours,
days, weeks, months) with interval_value a whole number of them, starting at
next_execution if given (else on whole intervals: every 15 minutes fires at :00, :15,
:30 and :45); or interval_type "cron" with interval_value a
5-field cron expression such as "0 9 * * 1-5". Times are ISO 8601: with an offset
(2026-03-01T09:00:00+01:00, or Z for UTC) they are that instant; without one they are
wall-clock times in `timezone` (an IANA name such as Europe/Berlin; default: the
config's settings.timezone). Cron and days/weeks/months follow that zone's wall clock
across daylight-saving changes; seconds/minutes/hours are exact elapsed time. A
one-time time in the past is refused unless the config allows past events. The
running `runner run` process executes the task; list_tasks shows its runs. Answers
the created task (its status, next_execution in UTC).""")


def _schedule_schema() -> dict[str, Any]:
    units = [*UNITS]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "function_name"],
        "properties": {
            "name": _name("A new, unique task name; the handle for the other tools."),
            "function_name": {
                "type": "string",
                "description": "module:callable, one of settings.api.allowed_functions.",
            },
            "parameters": {
                "type": "object",
                "description": "Keyword arguments for the function (JSON values).",
            },
            "next_execution": {
                "type": "string",
                "description": "ISO 8601 time of the (first) run; without offset, in timezone.",
            },
            "recurring": {"type": "boolean", "default": False},
            "interval_type": {
                "enum": ["once", "cron", *units],
                "description": "once (default unless recurring), cron, or a unit.",
            },
            "interval_value": {
                "type": ["integer", "string"],
                "description": "How many units between runs (integer >= 1), or the cron "
                "expression when interval_type is cron.",
            },
            "timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Berlin."},
            "max_executions": {
                "type": "integer",
                "minimum": 1,
                "description": "Stop after this many runs.",
            },
            "description": {"type": "string", "maxLength": 1000},
            "module_id": {"type": "string", "maxLength": 100},
        },
    }


def _refuse_schedule(service: SchedulerService, arguments: Arguments) -> str | None:
    if "command" in arguments:
        return (
            "schedule_task never runs a command; name a function of settings.api.allowed_functions"
        )
    function = arguments.get("function_name")
    return service.settings.api.function_refusal(function) if isinstance(function, str) else None


async def _schedule(service: SchedulerService, arguments: Arguments) -> Result[Any]:
    return await service.schedule_event(**arguments)


# --- list_tasks ---------------------------------------------------------------------------

LIST_TASKS = prose("""List scheduled tasks: those of the config files (source "config") and
those created by schedule_task or the API (source "user"), with status (active,
paused, completed, failed, cancelled), schedule, next_execution and
last_execution (ISO 8601, UTC), execution_count and failure_count. Filters combine;
`limit` caps the list (total_count and filtered_count tell how many there are). With
`executions` N, each task carries its latest N runs, newest first: when it was due,
the outcome (succeeded, failed, timed_out, interrupted, skipped), the error and the
function's result. With `name`, only that task. Read-only.""")

LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "description": "Only this task."},
        "status": {
            "type": "string",
            "description": "active, paused, completed, failed or cancelled.",
        },
        "module_id": {"type": "string"},
        "function_name": {"type": "string"},
        "recurring": {"type": "boolean"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
        "executions": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "default": 0,
            "description": "Include each task's latest N runs.",
        },
    },
}


async def _list(service: SchedulerService, arguments: Arguments) -> Result[Any]:
    filters = {k: v for k, v in arguments.items() if k not in ("name", "executions")}
    if "name" in arguments:
        one = await service.get_event(arguments["name"])
        if not one.success:
            return one
        listing: Result[Any] = Result.ok([one.data], total_count=1, filtered_count=1)
    else:
        listing = await service.list_events(**filters)
    count = arguments.get("executions", 0)
    if not listing.success or not count:
        return listing
    tasks = []
    for task in listing.data or []:
        history = await service.get_executions(task["name"], count)
        if not history.success:
            return history
        tasks.append({**task, "executions": history.data})
    return Result.ok(tasks, **listing.meta)


# --- cancel_task, execute_task_now ---------------------------------------------------------

CANCEL_TASK = prose("""Cancel a task created by schedule_task or the API: it stops being
scheduled (its history stays). A task of the config files (source "config") is refused
(code "conflict"): it belongs to the files, and only editing them removes it. Answers
the task with status cancelled.""")

EXECUTE_TASK_NOW = prose("""Ask for one run of a task now, outside its schedule (any task,
config or user). The running `runner run` process starts it within its check_interval
(about a second by default); this tool does not wait for the run. Its schedule is
unchanged. Watch the run with list_tasks (executions, trigger "manual").""")


def _by_name(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": {"type": "string", "description": what}},
    }


async def _cancel(service: SchedulerService, arguments: Arguments) -> Result[Any]:
    return await service.cancel_event(arguments["name"])


async def _execute_now(service: SchedulerService, arguments: Arguments) -> Result[Any]:
    return await service.execute_now(arguments["name"])


# --- register_cleanup, run_cleanup -----------------------------------------------------------

REGISTER_CLEANUP = prose("""Register (or replace) a cleanup policy: which files in one
directory the housekeeper may delete, by age (retention_days, in days of modification
time), count (max_files: keep the newest N) and total size (max_size_mb: keep the
newest within N megabytes); pattern and exclude are globs on the file name. Without any
limit the config's housekeeper.default_retention applies. The directory is an absolute
path; /, system roots and directories holding the runner's own database or config
files are refused (code "validation_error", with the reason). The policy runs on the
housekeeper's schedule in `runner run`, and with run_cleanup. Unless the config sets
settings.agents.allow_cleanup, policies registered here are dry runs (they report what
would go and delete nothing), and asking for dry_run false is refused.""")

RUN_CLEANUP = prose("""Run cleanup policies now (all, or those named in `policies`) and answer
one report per policy: files scanned and matched, deleted, bytes freed, errors,
duration, and for a dry run the files that would go (would_delete). A dry run by
default: it deletes nothing. A real run (dry_run false) deletes files and is refused
(code "forbidden") unless the config sets settings.agents.allow_cleanup; a policy that
is itself a dry run never deletes.""")


@functools.cache
def _register_schema() -> dict[str, Any]:
    cleanup = dict(_defs()["cleanup"])
    properties = dict(cleanup["properties"])
    properties["name"] = _name("The policy's name; registering it again replaces it.")
    properties["directory"] = {**properties["directory"], "description": "An absolute path."}
    properties["dry_run"] = {
        **properties["dry_run"],
        "description": "Delete nothing; report what would go. Agents' default unless "
        "settings.agents.allow_cleanup.",
    }
    del properties["dry_run"]["default"]
    cleanup["properties"] = properties
    return cleanup


RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dry_run": {"type": "boolean", "default": True, "description": "Delete nothing."},
        "policies": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Only these policies (default: all).",
        },
    },
}


def _refuse_deleting(service: SchedulerService, arguments: Arguments) -> str | None:
    """A deleting policy or run needs settings.agents.allow_cleanup."""
    if arguments.get("dry_run", True) is False and not service.settings.agents.allow_cleanup:
        return "deleting files is off for agents: settings.agents.allow_cleanup is false"
    return None


async def _register(service: SchedulerService, arguments: Arguments) -> Result[Any]:
    fields = dict(arguments)
    fields.setdefault("dry_run", not service.settings.agents.allow_cleanup)
    return await service.register_cleanup(**fields)


async def _run_cleanup(service: SchedulerService, arguments: Arguments) -> Result[Any]:
    return await service.run_cleanup(arguments.get("dry_run", True), arguments.get("policies", ()))


TOOLS: tuple[AgentTool, ...] = (
    AgentTool("schedule_task", SCHEDULE_TASK, _schedule_schema(), _schedule, _refuse_schedule),
    AgentTool("list_tasks", LIST_TASKS, LIST_SCHEMA, _list, read_only=True),
    AgentTool("cancel_task", CANCEL_TASK, _by_name("The task to cancel."), _cancel),
    AgentTool("execute_task_now", EXECUTE_TASK_NOW, _by_name("The task to run now."), _execute_now),
    AgentTool(
        "register_cleanup", REGISTER_CLEANUP, _register_schema(), _register, _refuse_deleting
    ),
    AgentTool("run_cleanup", RUN_CLEANUP, RUN_SCHEMA, _run_cleanup, _refuse_deleting),
)
BY_NAME = {tool.name: tool for tool in TOOLS}
