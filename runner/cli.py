"""The ``runner`` command. The only module that reads flags and the environment."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from runner.errors import ConfigError, NotFound, RunnerError

# The commands import what they use when they run: ``--help``, ``validate``, ``next`` and
# ``schema`` must start at once, without SQLAlchemy, Alembic or the service (issue 11).
if TYPE_CHECKING:
    import sqlite3
    from datetime import datetime

    from runner.plan import Plan
    from runner.progress import Steps
    from runner.service import Result, SchedulerService
    from runner.specs import Config, EventSpec
    from runner.store.sql import Store

EXIT_OK, EXIT_FAIL, EXIT_CHANGES = 0, 1, 2
T = TypeVar("T")


#: Commands that end once their work is done. While they run, Python's cyclic garbage
#: collector stays off: it would walk their ever larger heap (10,000 declarations read,
#: checked and written) again and again, a third of the time of an apply, to find the
#: few hundred objects in cycles they leave, which the process's end frees anyway.
ONE_SHOT = frozenset({"validate", "plan", "apply"})


def run() -> NoReturn:
    """The ``runner`` program: :func:`main`, then exit with its status."""
    if sys.argv[1:2] and sys.argv[1] in ONE_SHOT:
        gc.disable()
    status = main()
    # Tearing the interpreter down searches what is left of the heap for cycles again,
    # several times: a fifth of a second after applying 10k events. The process ends;
    # its objects are freed as usual, only not searched.
    gc.freeze()
    sys.exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status. Never a traceback for bad input."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        result: int = args.handler(args)
        return result
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr)
        _json_error(args, exc)
        return EXIT_FAIL
    except RunnerError as exc:
        print(f"runner: error: {exc}", file=sys.stderr)
        _json_error(args, exc)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


def _json_error(args: argparse.Namespace, exc: RunnerError) -> None:
    """With ``--json``, the error also goes to stdout as the API answers it:
    ``{"success": false, "error": {"code", "message"}}``, with the same codes."""
    if getattr(args, "json", False):
        from runner.result import Result, error_code

        print(json.dumps(Result.fail(error_code(exc), str(exc)).to_json(), indent=2))


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
    validate.add_argument(
        "--check-imports",
        action="store_true",
        help="import each function and check that its parameters fit its signature",
    )
    _config_flag(validate)

    plan = command("plan", cmd_plan, "show what apply would create, update and delete")
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 2 when there are changes"
    )
    plan.add_argument("--format", choices=["text", "json"], default="text")
    apply = command("apply", cmd_apply, "reconcile the config into the database once")
    apply.add_argument(
        "--allow-empty", action="store_true", help="allow a config that deletes every event"
    )
    listing = command("list", cmd_list, "events with status and next run")
    listing.add_argument("--json", action="store_true")
    nxt = command("next", cmd_next, "the next fire times of an event, a cron or an every")
    nxt.add_argument("name", nargs="?", help="an event of the config (or of the database)")
    nxt.add_argument("-n", type=int, default=5, help="how many (default 5)")
    nxt.add_argument("--after", help="ISO time (default now); without offset, in the event's zone")
    given = nxt.add_mutually_exclusive_group()
    given.add_argument("--cron", metavar="EXPR", help="preview a cron expression (no config)")
    given.add_argument("--every", metavar="SPEC", help="preview a period such as 15m (no config)")
    nxt.add_argument("--start", help="with --every: ISO time of the first occurrence")
    nxt.add_argument("--timezone", metavar="ZONE", help="with --cron or --every (default UTC)")
    run = command("run", cmd_run, "reconcile, watch the config, execute due jobs")
    run.add_argument("--once", action="store_true", help="run what is due now, wait for it, exit")
    run.add_argument("--no-watch", action="store_true", help="do not reload on config changes")
    run.add_argument("--log-format", choices=["auto", "text", "json"], default="auto")
    run.add_argument("--log-level", default=os.environ.get("RUNNER_LOG_LEVEL", "info"))
    run.add_argument("--handover", type=int, help=argparse.SUPPRESS)  # see server.start_afresh
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
    mcp = command("mcp", cmd_mcp, "the agent tools over MCP on stdio (for an agent host)")
    mcp.add_argument("--log-level", default=os.environ.get("RUNNER_LOG_LEVEL", "warning"))
    for sub in (plan, apply, listing, nxt, run, history, trigger, pause, resume, cleanup, mcp):
        _config_flag(sub)
        _db_flag(sub)
    command("schema", cmd_schema, "print the JSON Schema of config files")
    health = command("healthcheck", cmd_healthcheck, "exit 0 when the API answers /healthz")
    _config_flag(health)
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
    from runner import config as configs

    print(json.dumps(configs.schema(), indent=2))
    return EXIT_OK


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from runner import healthcheck

    problem = healthcheck.probe(_load(args).settings.api)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return EXIT_FAIL if problem else EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from runner import config as configs
    from runner import views

    # An unset ${VAR} is a warning here: CI checks configs without the production secrets.
    report = configs.validate(args.paths or [args.config], os.environ, _now(), unset="warning")
    if args.check_imports and report.config is not None:
        from runner import imports

        sys.path.insert(0, os.getcwd())  # as `runner run` imports them
        report.problems = sorted([*report.problems, *imports.check(report.config, os.environ)])
        if report.errors:
            report.config = None
    print(views.problems(report, args.format))
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    return EXIT_FAIL if failed else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    config = _load(args)  # before the database's imports: a broken config fails at once

    from zoneinfo import ZoneInfo

    from runner import plan, reconciler, views

    planned = reconciler.plan_of(database_url(args, config), config)
    result = plan.with_fire_times(planned, config, _now())
    if args.format == "json":
        print(json.dumps(views.plan_json(result), indent=2))
    else:
        zones = {e.name: ZoneInfo(e.schedule["timezone"]) for e in config.events}
        text = views.plan_text(result, zones)
        print("\n".join(filter(None, [text, _refusal(result), result.summary()])))
    if result.conflicts or result.refused_empty:
        return EXIT_FAIL  # apply would refuse this config: a CI check must fail
    return EXIT_CHANGES if args.detailed_exitcode and not result.empty else EXIT_OK


def _refusal(result: Plan) -> str:
    from runner import reconciler

    return f"! refused: {reconciler.EMPTY_REFUSAL}" if result.refused_empty else ""


def cmd_apply(args: argparse.Namespace) -> int:
    from runner import progress

    with progress.shown(sys.stderr, "reading the config") as steps:
        config = _load(args)
        steps.phase(f"applying {len(config.events)} events, {len(config.cleanups)} policies")
        from runner import reconciler  # the database's imports, once the config is good

        url = database_url(args, config)
        result = reconciler.apply_to(url, config, _now(), args.allow_empty)
    summary = result.summary().replace("Plan:", "Applied:") + f" Revision {config.revision[:12]}."
    print("\n".join([*(change.render() for change in result.changes), summary]))  # one write
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from runner import views

    config = _load_unless_database_named(args)

    async def show(service: SchedulerService) -> int:
        events = _data(await service.list_events(with_spec=args.json))
        state = _data(await service.config_state())
        if args.json:
            print(json.dumps({"config": state, "events": events}, indent=2))
        else:
            print(views.event_table(events))
            print(f"\n{views.config_line(state)}")
        return EXIT_OK

    return _with_service(args, config, show)


def cmd_next(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from runner import preview, schedules, views
    from runner.occurrences import fire_times, schedule_of

    if args.cron is not None or args.every is not None:
        return _next_of_flags(args)
    if args.name is None:
        raise RunnerError("next needs an event NAME, --cron EXPR or --every SPEC")
    config = _load_for_event(args, args.name)
    spec = next((e for e in config.events if e.name == args.name), None)
    if spec is None:
        spec = _with_store(args, config, lambda store: _stored_spec(store, args.name))
    zone = ZoneInfo(spec.schedule["timezone"])
    try:
        after = schedules.parse_time(args.after, zone) if args.after else _now()
    except (ValueError, OverflowError) as exc:
        raise RunnerError(f"--after: {exc}") from exc
    fires = fire_times(spec, after, args.n)
    shown = preview.with_changes(schedule_of(spec), after, fires)
    print(views.schedule_preview(shown, spec.name))
    return EXIT_OK


def _next_of_flags(args: argparse.Namespace) -> int:
    """``runner next --cron EXPR`` or ``--every SPEC``: a preview without a config."""
    from runner import preview, views

    if args.name is not None:
        raise RunnerError("next takes an event NAME or --cron/--every, not both")
    kind, value = ("cron", args.cron) if args.cron is not None else ("every", args.every)
    declared = {kind: value, "start": args.start, "timezone": args.timezone or "UTC"}
    try:
        shown = preview.of_spec(declared, args.after, args.n, _now())
    except (ValueError, OverflowError) as exc:
        raise RunnerError(str(exc)) from exc
    print(views.schedule_preview(shown))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from runner import init, logs, server
    from runner.clock import SystemClock
    from runner.store.locks import exclusive_runner

    fresh = args.handover is not None  # started afresh: already under init, config applied
    if init.wanted(os.environ) and not fresh:
        init.become_init()
    logs.setup(args.log_format, args.log_level)
    # Like `python -m`: functions named in the config may live in the working directory.
    sys.path.insert(0, os.getcwd())
    config, held = server.handed_over(args.handover) if fresh else (_load(args), None)
    url = database_url(args, config)
    options = server.Options(
        args.config, url, once=args.once, watch=not args.no_watch, applied=fresh
    )
    with exclusive_runner(url, held) as lock:
        if not fresh and server.worth_a_fresh_start(config, options):
            asyncio.run(server.apply(url, config, SystemClock()))
            server.start_afresh(args.argv, config, lock)
        serving = server.serve(options, config, os.environ, SystemClock())
        del config  # serve keeps what it needs, so the declarations can go once applied
        return asyncio.run(serving)


def cmd_history(args: argparse.Namespace) -> int:
    from runner import views

    config = _load_unless_database_named(args)

    async def show(service: SchedulerService) -> int:
        executions = _data(await service.get_executions(args.name, args.limit))
        if args.json:
            print(json.dumps(executions, indent=2))
        else:
            print(views.execution_table(executions))
        return EXIT_OK

    return _with_service(args, config, show)


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Housekeeping now: the config's policies and those registered through the library."""
    import sqlite3

    from runner import progress, views
    from runner.store import readonly

    config = _load(args)
    url = database_url(args, config)
    path = readonly.path_of(url)
    try:
        db = readonly.connect(path) if path is not None else None
    except sqlite3.Error:
        db = None  # the store opens it again, and says what is wrong
    with progress.shown(sys.stderr, "cleaning", total=0) as steps:
        if db is not None:
            reports = _clean_file(db, url, args, config, steps)
        else:

            async def clean(service: SchedulerService) -> list[dict[str, Any]]:
                return _data(await service.run_cleanup(args.dry_run, args.policy, config, steps))

            reports = _with_service(args, config, clean)
    print(json.dumps(reports, indent=2) if args.json else views.cleanup_table(reports))
    return EXIT_FAIL if any(r["errors"] for r in reports) else EXIT_OK


def _clean_file(
    db: sqlite3.Connection, url: str, args: argparse.Namespace, config: Config, steps: Steps
) -> list[dict[str, Any]]:
    """:meth:`SchedulerService.run_cleanup` for ``runner cleanup`` on an SQLite file at
    the head revision, read and written with sqlite3 alone (:mod:`runner.store.reports`):
    the config's policies and the registered ones, the runner's own files protected."""
    import asyncio

    from runner import housekeeper, safety, views
    from runner.orphans import default_runner_id
    from runner.store import reports as stored

    try:
        chosen = housekeeper.chosen([*config.cleanups, *stored.user_policies(db)], args.policy)
        protected = [*safety.own_files((), url), *config.files]
        keeper, now = config.settings.housekeeper, _now()
        steps.total(sum(1 for p in chosen if p.enabled))
        done = lambda _report: steps.done()  # noqa: E731
        cleaned = housekeeper.run(chosen, keeper, now, protected, args.dry_run, done)
        reports = asyncio.run(cleaned)
        if keeper.report_enabled:
            stored.save(db, reports, default_runner_id(), now)
    finally:
        db.close()
    return [views.cleanup_json(r) for r in reports]


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve the agent tools on stdin/stdout; jobs run in ``runner run`` on the same database."""
    import asyncio

    from runner import logs

    try:
        from runner import mcp_server  # the optional extra
    except ImportError as exc:
        raise RunnerError(
            f"runner mcp needs the agents extra: pip install 'runner[agents]' ({exc})"
        ) from exc
    logs.setup("json", args.log_level)  # stderr: stdout carries the protocol
    config = _load(args)
    return asyncio.run(mcp_server.serve_stdio(config, database_url(args, config)))


def cmd_trigger(args: argparse.Namespace) -> int:
    return _change_event(
        args,
        lambda service: service.execute_now(args.name),
        "run requested; the runner starts it within its check_interval",
    )


def cmd_pause(args: argparse.Namespace) -> int:
    return _change_event(args, lambda service: service.pause_event(args.name), "paused")


def cmd_resume(args: argparse.Namespace) -> int:
    return _change_event(args, lambda service: service.resume_event(args.name), "resumed")


def _change_event(
    args: argparse.Namespace,
    call: Callable[[SchedulerService], Awaitable[Result[Any]]],
    done: str,
) -> int:
    config = _load_unless_database_named(args)

    async def change(service: SchedulerService) -> int:
        _data(await call(service))
        print(f"{args.name}: {done}")
        return EXIT_OK

    return _with_service(args, config, change)


async def _stored_spec(store: Store, name: str) -> EventSpec:
    row = await store.get_event(name)
    if row is None:
        raise NotFound(f"no event named '{name}' in the config or the database")
    return row.spec


# --- plumbing ---------------------------------------------------------------------------


def _now() -> datetime:
    from runner.clock import SystemClock

    return SystemClock().now()


def _load(args: argparse.Namespace) -> Config:
    from runner import config as configs

    return configs.load([args.config], os.environ, _now())


def _load_for_event(args: argparse.Namespace, name: str) -> Config:
    """The config, or, when it has errors but event ``name`` has none, its valid part (the
    errors printed on stderr), so one bad event does not hide the others."""
    from runner import config as configs

    report = configs.validate([args.config], os.environ, _now())
    if report.config is not None:
        return report.config
    partial = report.partial
    if partial is None or all(event.name != name for event in partial.events):
        raise ConfigError(report.errors)
    for problem in report.errors:
        print(problem.render(), file=sys.stderr)
    return partial


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
    from runner.store.sql import on_store

    return on_store(database_url(args, config), work)


def _with_service(
    args: argparse.Namespace,
    config: Config | None,
    work: Callable[[SchedulerService], Coroutine[Any, Any, T]],
) -> T:
    """``work`` on the library's service over the named database, with the config's
    settings (the defaults when the config was not read)."""
    from runner.service import SchedulerService

    async def on_service(store: Store) -> T:
        settings = config.settings if config else None
        return await work(SchedulerService(store, settings))

    return _with_store(args, config, on_service)


def _data(result: Result[T]) -> T:
    """A successful call's data; a failed call's message as the command's error."""
    if not result.success:
        from runner.result import exception_for

        raise exception_for(result.code or "internal_error", result.message or "failed")
    assert result.data is not None, "a successful call of the service returns its data"
    return result.data
