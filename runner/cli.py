"""The ``runner`` command. The only module that reads flags and the environment."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from runner import config as configs
from runner import init, logs, reconciler, schedules, server
from runner.clock import SystemClock
from runner.errors import ConfigError, NotFound, Problem, RunnerError
from runner.housekeeper import Report as CleanupReport
from runner.loop import default_runner_id, run_housekeeping
from runner.occurrences import next_fire
from runner.service import event_json, execution_json
from runner.specs import Config, EventSpec
from runner.store.locks import exclusive_runner
from runner.store.sql import EventRow, ExecutionRow, Store

EXIT_OK, EXIT_FAIL, EXIT_CHANGES = 0, 1, 2
CLOCK = SystemClock()
log = logging.getLogger("runner")
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
    run = command("run", cmd_run, "reconcile, watch the config, execute due jobs")
    run.add_argument("--once", action="store_true", help="run what is due now, wait for it, exit")
    run.add_argument("--no-watch", action="store_true", help="do not reload on config changes")
    run.add_argument("--log-format", choices=["auto", "text", "json"], default="auto")
    run.add_argument("--log-level", default=os.environ.get("RUNNER_LOG_LEVEL", "info"))
    history = command("history", cmd_history, "executions, newest first")
    history.add_argument("name", nargs="?")
    history.add_argument("-n", "--limit", type=int, default=50)
    history.add_argument("--json", action="store_true")
    trigger = command("trigger", cmd_trigger, "run an event now (the runner starts it)")
    pause = command("pause", cmd_pause, "pause an event")
    resume = command("resume", cmd_resume, "resume a paused event from its next occurrence")
    for sub in (trigger, pause, resume):
        sub.add_argument("name")
    cleanup = command("cleanup", cmd_cleanup, "run housekeeping now and print the report")
    cleanup.add_argument(
        "--dry-run", action="store_true", help="delete nothing; report what would go"
    )
    cleanup.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME",
        help="only this policy (repeatable)",
    )
    cleanup.add_argument("--json", action="store_true")
    for sub in (plan, apply, listing, nxt, run, history, trigger, pause, resume, cleanup):
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
        if result.conflicts or result.refused_empty:
            return EXIT_FAIL  # apply would refuse this config: a CI check must fail
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
    config = _load_unless_database_named(args)

    async def show(store: Store) -> int:
        rows = await store.list_events()
        state = await store.config_state()
        if args.json:
            print(
                json.dumps(
                    {
                        "config": state,
                        "events": [event_json(r) | {"spec": r.spec.to_json()} for r in rows],
                    },
                    indent=2,
                )
            )
            return EXIT_OK
        print(
            _table(
                ["NAME", "STATUS", "SOURCE", "NEXT (UTC)", "LAST (UTC)", "RUNS", "SCHEDULE"],
                [_event_cells(r) for r in rows],
            )
        )
        revision = (state.get("revision") or "none")[:12]
        applied_by = f" (applied by {state['applied_by']})" if state.get("applied_by") else ""
        error = f"; last error: {state['error']}" if state.get("error") else ""
        print(f"\nconfig revision {revision}{applied_by}{error}")
        return EXIT_OK

    return _with_store(args, config, show)


def cmd_next(args: argparse.Namespace) -> int:
    config = _load(args)
    spec = next((e for e in config.events if e.name == args.name), None)
    if spec is None:
        spec = _with_store(args, config, lambda store: _stored_spec(store, args.name))
    zone = ZoneInfo(spec.schedule["timezone"])
    try:
        current = schedules.parse_time(args.after, zone) if args.after else CLOCK.now()
    except (ValueError, OverflowError) as exc:
        raise RunnerError(f"--after: {exc}") from exc
    for _ in range(args.n):
        fire = next_fire(spec, current)
        if fire is None:
            break
        local = fire.astimezone(zone)
        print(f"{local:%Y-%m-%d %H:%M:%S %Z (%z)}  {fire:%Y-%m-%dT%H:%M:%SZ}")
        current = fire
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    if init.wanted(os.environ):
        init.become_init()
    logs.setup(args.log_format, args.log_level)
    # Like `python -m`: functions named in the config may live in the working directory.
    sys.path.insert(0, os.getcwd())
    config = _load(args)
    url = database_url(args, config)
    options = server.Options(args.config, url, once=args.once, watch=not args.no_watch)
    with exclusive_runner(url):
        return asyncio.run(server.serve(options, config, os.environ, CLOCK))


def cmd_history(args: argparse.Namespace) -> int:
    config = _load_unless_database_named(args)

    async def show(store: Store) -> int:
        rows = await store.history(args.name, args.limit)
        if args.json:
            print(json.dumps([execution_json(r) for r in rows], indent=2))
            return EXIT_OK
        header = [
            "EVENT",
            "SCHEDULED (UTC)",
            "TRY",
            "TRIGGER",
            "OUTCOME",
            "DURATION",
            "RUNNER",
            "ERROR",
        ]
        print(_table(header, [_execution_cells(r) for r in rows], "no executions"))
        return EXIT_OK

    return _with_store(args, config, show)


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Housekeeping now: the config's policies and those registered through the library."""
    config = _load(args)
    url = database_url(args, config)

    async def clean(store: Store) -> int:
        policies = [*config.cleanups, *await store.cleanup_policies(source="user")]
        unknown = set(args.policy) - {p.name for p in policies}
        if unknown:
            raise NotFound(f"no cleanup policy named {', '.join(sorted(unknown))}")
        chosen = [p for p in policies if not args.policy or p.name in args.policy]
        protected = configs.own_files(config.files, url)
        reports = await run_housekeeping(
            store,
            chosen,
            config.settings,
            CLOCK.now(),
            default_runner_id(),
            protected,
            args.dry_run,
        )
        if args.json:
            print(json.dumps([dataclasses.asdict(r) for r in reports], indent=2, default=str))
        else:
            print(_cleanup_table(reports))
        return EXIT_FAIL if any(r.errors for r in reports) else EXIT_OK

    return _with_store(args, config, clean)


def _cleanup_table(reports: list[CleanupReport]) -> str:
    header = ["POLICY", "SCANNED", "MATCHED", "DELETED", "FREED", "ERRORS", "SECONDS", "DIRECTORY"]
    rows = [
        [
            r.policy + (" (dry run)" if r.dry_run else ""),
            str(r.scanned),
            str(r.matched),
            str(r.deleted),
            _size(r.bytes_freed),
            str(len(r.errors)),
            f"{r.duration:.3f}",
            r.directory,
        ]
        for r in reports
    ]
    lines = [_table(header, rows, "no cleanup policies")]
    for r in reports:
        lines += [f"{r.policy}: error: {e}" for e in r.errors]
        lines += [f"{r.policy}: would delete {name}" for name in r.would_delete]
    return "\n".join(lines)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _change_event(args: argparse.Namespace, verb: str) -> int:
    config = _load_unless_database_named(args)

    async def change(store: Store) -> int:
        now = CLOCK.now()
        if verb == "trigger":
            found = await store.request_run(args.name, now)
        else:
            found = await store.set_paused(args.name, verb == "pause", now)
        if not found:
            raise NotFound(f"no event named '{args.name}'")
        done = {"trigger": "run requested; the runner starts it within its check_interval"}
        print(f"{args.name}: " + done.get(verb, f"{verb}d"))
        return EXIT_OK

    return _with_store(args, config, change)


def cmd_trigger(args: argparse.Namespace) -> int:
    return _change_event(args, "trigger")


def cmd_pause(args: argparse.Namespace) -> int:
    return _change_event(args, "pause")


def cmd_resume(args: argparse.Namespace) -> int:
    return _change_event(args, "resume")


async def _stored_spec(store: Store, name: str) -> EventSpec:
    row = await store.get_event(name)
    if row is None:
        raise NotFound(f"no event named '{name}' in the config or the database")
    return row.spec


# --- plumbing ---------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> Config:
    return configs.load([args.config], os.environ, CLOCK.now())


def _load_unless_database_named(args: argparse.Namespace) -> Config | None:
    """The config, unless ``--db`` or ``RUNNER_DATABASE_URL`` names the database: then the
    commands that only read or poke the database work even while the config is broken."""
    if args.db or os.environ.get("RUNNER_DATABASE_URL"):
        return None
    return _load(args)


def database_url(args: argparse.Namespace, config: Config | None) -> str:
    """``--db``, else ``RUNNER_DATABASE_URL``, else ``settings.database``."""
    named = args.db or os.environ.get("RUNNER_DATABASE_URL")
    if named:
        return str(named)
    assert config is not None, "the config is read whenever no database is named"
    return config.settings.database


def _with_store(
    args: argparse.Namespace, config: Config | None, work: Callable[[Store], Coroutine[Any, Any, T]]
) -> T:
    async def session() -> T:
        store = await Store.open(database_url(args, config))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(session())


def _event_cells(row: EventRow) -> list[str]:
    schedule = " ".join(f"{k}={v}" for k, v in row.spec.schedule.items())
    return [
        row.name,
        row.display_status,
        row.source,
        _when(row.next_execution),
        _when(row.last_execution),
        str(row.execution_count),
        schedule,
    ]


def _execution_cells(row: ExecutionRow) -> list[str]:
    duration = f"{row.duration:.3f}s" if row.duration is not None else "-"
    error = (row.error or "").replace("\n", " ")[:60]
    return [
        row.event,
        _when(row.scheduled_time),
        str(row.attempt),
        row.trigger,
        row.outcome,
        duration,
        row.runner_id or "-",
        error,
    ]


def _table(header: list[str], rows: list[list[str]], empty: str = "no events") -> str:
    if not rows:
        return empty
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
