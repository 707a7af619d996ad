"""The ``runner`` command. The only module that reads flags and the environment."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from runner import config as configs
from runner import reconciler, schedules
from runner.clock import SystemClock
from runner.errors import ConfigError, NotFound, Problem, RunnerError
from runner.occurrences import next_fire
from runner.specs import Config, EventSpec
from runner.store.sql import EventRow, Store

EXIT_OK, EXIT_FAIL, EXIT_CHANGES = 0, 1, 2
CLOCK = SystemClock()
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status. Never a traceback for bad input."""
    args = _parser().parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr)
        return EXIT_FAIL
    except RunnerError as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runner", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    validate = command("validate", cmd_validate, "validate config files; no database")
    validate.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories (default: --config)"
    )
    validate.add_argument("--format", choices=["text", "json", "github"], default="text")
    validate.add_argument("--strict", action="store_true", help="fail on warnings too")
    _config_flag(validate)

    plan = command("plan", cmd_plan, "show what apply would create, update and delete")
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 2 when there are changes"
    )
    apply = command("apply", cmd_apply, "reconcile the config into the database once")
    apply.add_argument(
        "--allow-empty", action="store_true", help="allow a config that deletes every event"
    )
    listing = command("list", cmd_list, "events with status and next run")
    listing.add_argument("--json", action="store_true")
    nxt = command("next", cmd_next, "the next fire times of an event")
    nxt.add_argument("name")
    nxt.add_argument("-n", type=int, default=5, help="how many (default 5)")
    nxt.add_argument("--after", help="ISO time (default now); without offset, in the event's zone")
    for sub in (plan, apply, listing, nxt):
        _config_flag(sub)
        _db_flag(sub)
    command("schema", cmd_schema, "print the JSON Schema of config files")
    return parser


def _config_flag(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("RUNNER_CONFIG", "scheduler.yaml")
    parser.add_argument("--config", default=default, help=f"file or directory (default {default})")


def _db_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", help="database URL (default RUNNER_DATABASE_URL, then settings.database)"
    )


# --- commands ---------------------------------------------------------------------------


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(configs.schema(), indent=2))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    report = configs.validate(args.paths or [args.config], os.environ, CLOCK.now())
    print(_format_problems(report, args.format))
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    return EXIT_FAIL if failed else EXIT_OK


def _format_problems(report: configs.Report, fmt: str) -> str:
    if fmt == "json":
        config = report.config
        summary = {
            "valid": not report.errors,
            "problems": [_problem_json(p) for p in report.problems],
        }
        if config:
            summary |= {
                "events": len(config.events),
                "cleanup": len(config.cleanups),
                "revision": config.revision,
            }
        return json.dumps(summary, indent=2)
    if fmt == "github":
        return "\n".join(_github(p) for p in report.problems)
    lines = [p.render() for p in report.problems]
    if report.config:
        c = report.config
        counts = f"{len(c.events)} events, {len(c.cleanups)} cleanup policies"
        lines.append(f"ok: {counts} in {len(c.files)} files")
    else:
        lines.append(f"invalid: {len(report.errors)} errors, {len(report.warnings)} warnings")
    return "\n".join(lines)


def _problem_json(p: Problem) -> dict[str, Any]:
    return {
        "file": p.file,
        "line": p.line,
        "col": p.col,
        "severity": p.severity,
        "path": p.path,
        "message": p.message,
    }


def _github(p: Problem) -> str:
    """A GitHub Actions workflow command, so the problem shows on the pull request's line."""
    level = "error" if p.severity == "error" else "warning"
    message = (
        (p.message + (f" (at {p.path})" if p.path else "")).replace("%", "%25").replace("\n", "%0A")
    )
    file = p.file.replace(",", "%2C").replace(":", "%3A")
    return f"::{level} file={file},line={p.line},col={p.col},title=runner validate::{message}"


def cmd_plan(args: argparse.Namespace) -> int:
    config = _load(args)

    async def show(store: Store) -> int:
        result = await reconciler.plan(store, config)
        for change in result.changes:
            print(change.render())
        for conflict in result.conflicts:
            print(f"! conflict: {conflict}")
        if result.refused_empty:
            print(f"! refused: {reconciler.EMPTY_REFUSAL}")
        print(result.summary())
        return EXIT_CHANGES if args.detailed_exitcode and not result.empty else EXIT_OK

    return _with_store(args, config, show)


def cmd_apply(args: argparse.Namespace) -> int:
    config = _load(args)

    async def run(store: Store) -> int:
        result = await reconciler.apply(store, config, CLOCK.now(), args.allow_empty)
        for change in result.changes:
            print(change.render())
        print(result.summary().replace("Plan:", "Applied:") + f" Revision {config.revision[:12]}.")
        return EXIT_OK

    return _with_store(args, config, run)


def cmd_list(args: argparse.Namespace) -> int:
    config = _load(args)

    async def show(store: Store) -> int:
        rows = await store.list_events()
        state = await store.config_state()
        if args.json:
            print(json.dumps({"config": state, "events": [_event_json(r) for r in rows]}, indent=2))
            return EXIT_OK
        print(
            _table(
                ["NAME", "STATUS", "SOURCE", "NEXT (UTC)", "LAST (UTC)", "RUNS", "SCHEDULE"],
                [_event_cells(r) for r in rows],
            )
        )
        revision = (state.get("revision") or "none")[:12]
        print(
            f"\nconfig revision {revision}"
            + (f"; last error: {state['error']}" if state.get("error") else "")
        )
        return EXIT_OK

    return _with_store(args, config, show)


def cmd_next(args: argparse.Namespace) -> int:
    config = _load(args)
    spec = next((e for e in config.events if e.name == args.name), None)
    if spec is None:
        spec = _with_store(args, config, lambda store: _stored_spec(store, args.name))
    zone = ZoneInfo(spec.schedule["timezone"])
    current = schedules.parse_time(args.after, zone) if args.after else CLOCK.now()
    for _ in range(args.n):
        fire = next_fire(spec, current)
        if fire is None:
            break
        local = fire.astimezone(zone)
        print(f"{local:%Y-%m-%d %H:%M:%S %Z (%z)}  {fire:%Y-%m-%dT%H:%M:%SZ}")
        current = fire
    return EXIT_OK


async def _stored_spec(store: Store, name: str) -> EventSpec:
    row = await store.get_event(name)
    if row is None:
        raise NotFound(f"no event named '{name}' in the config or the database")
    return row.spec


# --- plumbing ---------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Config:
    return configs.load([args.config], os.environ, CLOCK.now())


def database_url(args: argparse.Namespace, config: Config) -> str:
    """``--db``, else ``RUNNER_DATABASE_URL``, else ``settings.database``."""
    return str(args.db or os.environ.get("RUNNER_DATABASE_URL") or config.settings.database)


def _with_store(
    args: argparse.Namespace, config: Config, work: Callable[[Store], Coroutine[Any, Any, T]]
) -> T:
    async def session() -> T:
        store = await Store.open(database_url(args, config))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(session())


def _event_json(row: EventRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "status": row.display_status,
        "source": row.source,
        "next_execution": row.next_execution.isoformat() if row.next_execution else None,
        "last_execution": row.last_execution.isoformat() if row.last_execution else None,
        "execution_count": row.execution_count,
        "failure_count": row.failure_count,
        "config_revision": row.config_revision,
        "spec": row.spec.to_json(),
    }


def _event_cells(row: EventRow) -> list[str]:
    when = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"  # noqa: E731
    schedule = " ".join(f"{k}={v}" for k, v in row.spec.schedule.items())
    return [
        row.name,
        row.display_status,
        row.source,
        when(row.next_execution),
        when(row.last_execution),
        str(row.execution_count),
        schedule,
    ]


def _table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "no events"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )
