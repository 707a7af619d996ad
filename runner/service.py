"""The library API: :class:`SchedulerService`, whose every call returns a :class:`Result`.

Events created here are *user* events: reconcile never touches them, and they may be
cancelled. Inputs are validated by the same schema and checks as config files.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from runner import config as configs
from runner import design, functions, housekeeper, safety, schedules
from runner.clock import Clock, SystemClock
from runner.errors import Conflict, Invalid, NotFound, StoreError
from runner.functions import Functions
from runner.loop import Runner, run_housekeeping
from runner.orphans import default_runner_id
from runner.progress import Steps
from runner.result import Result, error_code
from runner.specs import Config, Settings
from runner.store.sql import EventFilter, EventRow, Store
from runner.views import cleanup_json, event_json, execution_json

__all__ = ["Result", "SchedulerService", "event_json", "execution_json"]
log = logging.getLogger("runner.service")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
UNITS = design.UNITS  # the interval units of the design, for the agent tools
MAX_PARAMETERS = 64 * 1024  # bytes of JSON: ample for arguments, small beside a listing


async def _guard(call: Awaitable[Result[T]]) -> Result[T]:
    """Turn runner's exceptions into failed Results; unexpected ones are logged."""
    try:
        return await call
    except StoreError as exc:
        log.error("database error: %s", exc)
        return Result.fail("database_error", "the database is unavailable")
    except Exception as exc:
        code = error_code(exc)
        if code != "internal_error":
            return Result.fail(code, str(exc))
        log.exception("unexpected error in the scheduler service")
        return Result.fail(code, "unexpected error; see the runner's log")


class SchedulerService:
    """Schedule and drive work from a Python program.

    Open one with :meth:`open` (it migrates the database), call :meth:`start` to execute
    due jobs in this process, and :meth:`shutdown` to stop gracefully and close.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        clock: Clock | None = None,
        runner: Runner | None = None,
        wake: Callable[[], None] = lambda: None,
        protected_files: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.protected_files = list(protected_files)
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.runner = runner
        # The runner's, so a name registered here is one its jobs can call.
        self.functions = runner.functions if runner else Functions(lambda: self.settings.functions)
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    def reconfigure(self, settings: Settings) -> None:
        """Work under new settings (a reloaded config) from the next call on."""
        self.settings = settings

    @classmethod
    async def open(
        cls, database_url: str, settings: Settings | None = None, clock: Clock | None = None
    ) -> SchedulerService:
        """A service on ``database_url`` (``sqlite:///file.db`` or ``postgresql://...``)."""
        return cls(await Store.open(database_url), settings, clock)

    def wake(self) -> None:
        if self.runner is not None:
            self.runner.wake.set()
        self._wake()

    # --- running in this process --------------------------------------------------------

    async def start(self) -> Result[None]:
        """Execute due jobs in the background of this event loop until :meth:`shutdown`."""
        if self.runner is None:
            self.runner = Runner(self.store, self.settings, self.clock, functions=self.functions)
        if self._task is None:
            await self.store.recover(self.clock.now())
            self._task = asyncio.create_task(self.runner.run())
        return Result.ok()

    async def shutdown(self, grace: float | None = None) -> Result[None]:
        """Stop running jobs (after ``grace`` seconds, default ``shutdown_grace``) and close."""

        async def stop() -> Result[None]:
            if self.runner is not None and self._task is not None:
                self.runner.stop()
                await self._task
                await self.runner.shutdown(self.settings.shutdown_grace if grace is None else grace)
            await self.store.close()
            return Result.ok()

        return await _guard(stop())

    # --- job functions ------------------------------------------------------------------

    def register_function(self, name: str, function: Callable[..., Any]) -> Result[dict[str, Any]]:
        """Let events call ``function`` (sync or async) as ``name``, e.g.
        ``register_function("backup_database", backup)`` then
        ``schedule_event(..., function_name="backup_database")``.

        ``validation_error`` for a name that is not a dotted identifier; ``conflict`` when
        the name is taken by another callable. Events keep working with ``module:callable``.
        """
        try:
            self.functions.register(name, function)
        except ValueError as exc:
            return Result.fail("validation_error", str(exc))
        except Conflict as exc:
            return Result.fail("conflict", str(exc))
        return Result.ok({"function_name": name})

    def function(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator form of :meth:`register_function`: ``@service.function("backup_database")``
        (default name: the function's ``__name__``). Raises :class:`Invalid` or
        :class:`~runner.errors.Conflict` where :meth:`register_function` would fail."""

        def register(function: F) -> F:
            result = self.register_function(name or function.__name__, function)
            if not result.success:
                error = Conflict if result.code == "conflict" else Invalid
                raise error(result.message)
            return function

        return register

    # --- events -------------------------------------------------------------------------

    async def schedule_event(
        self,
        name: str | Mapping[str, Any],
        function_name: str | None = None,
        next_execution: datetime | str | None = None,
        recurring: bool = False,
        interval_type: str | None = None,
        interval_value: int | str | None = None,
        module_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        max_executions: int | None = None,
        description: str | None = None,
        timezone: str | None = None,
        **fields: Any,
    ) -> Result[dict[str, Any]]:
        """Create a user event; ``data["event_id"]`` is its id.

        Either the module design's arguments: ``function_name`` (a name given to
        :meth:`register_function` or in ``settings.functions``, or ``module:callable``);
        one-time with ``next_execution`` (refused in the past unless
        ``allow_past_events``); recurring with ``interval_type`` ``cron`` and the
        expression (``interval_value`` or ``parameters["_cron_expression"]``), or a unit
        (seconds, minutes … months) and a count in ``interval_value``, from
        ``next_execution`` if given. ``fields`` take the config's other event fields
        (``timeout``, ``retry``, ``overlap``, ``misfire``, ``jitter``, even ``schedule``).

        Or the config's event mapping, as a config file holds it:
        ``schedule_event({"name": ..., "function": ..., "schedule": {...}, ...})``.
        Both are validated by the config's JSON Schema and checks.
        """

        async def create() -> Result[dict[str, Any]]:
            if isinstance(name, Mapping):
                given = (function_name, next_execution, interval_type, interval_value)
                if any(v is not None for v in given) or recurring or fields:
                    raise Invalid("give the event's mapping alone, or the design's arguments")
                declared, problems = dict(name), list[str]()
            else:
                declared, problems = design.event_mapping(
                    name,
                    function_name,
                    next_execution,
                    recurring,
                    interval_type,
                    interval_value,
                    parameters,
                    timezone,
                    module_id=module_id,
                    max_executions=max_executions,
                    description=description,
                    **fields,
                )
            problems += self._unknown_function(declared.get("function"))
            problems += _parameters_problems(declared.get("parameters"))
            spec = self._validated("events", declared, problems)
            now = self.clock.now()
            at = schedules.from_spec(spec.schedule)
            if (
                isinstance(at, schedules.At)
                and at.at <= now
                and not self.settings.allow_past_events
            ):
                raise Invalid(
                    f"next_execution {at.at.isoformat()} is in the past (allow_past_events is off)"
                )
            await self.store.create_user_event(spec, now)
            self.wake()
            return await self.get_event(spec.name)

        return await _guard(create())

    def _unknown_function(self, function: object) -> list[str]:
        """A problem when ``function`` is a name nobody registered (the schema checks its
        form, and an import path is imported when it runs)."""
        named = isinstance(function, str) and functions.NAME.match(function)
        if named and not self.functions.knows(str(function)):
            return [f"function: no function is registered as '{function}'"]
        return []

    def _validated(
        self, section: str, declared: Mapping[str, Any], problems: Sequence[str] = ()
    ) -> Any:
        report = configs.validate_data(
            {section: [declared]}, "<service>", self.clock.now(), self.settings
        )
        found = list(problems)
        found += [
            f"{p.path.removeprefix(f'{section}[0]').lstrip('.') or section}: {p.message}"
            for p in report.errors
        ]
        if found or report.config is None:
            raise Invalid("; ".join(found))
        return (report.config.events or report.config.cleanups)[0]

    async def list_events(
        self,
        status: str | None = None,
        module_id: str | None = None,
        function_name: str | None = None,
        recurring: bool | None = None,
        limit: int | None = None,
        with_spec: bool = False,
    ) -> Result[list[dict[str, Any]]]:
        """Events matching the filters; ``meta`` has ``total_count`` and ``filtered_count``.
        ``with_spec`` adds each event's whole declared ``spec``, which may hold a command's
        ``env``: for the operator's own tools (``runner list --json``), not the HTTP API."""

        async def listing() -> Result[list[dict[str, Any]]]:
            filters = EventFilter(status, module_id, function_name, recurring)
            rows = await self.store.list_events(
                EventFilter(status, module_id, function_name, recurring, limit)
            )
            total = await self.store.count_events()
            matching = await self.store.count_events(filters)
            events = [
                event_json(r) | ({"spec": r.spec.to_json()} if with_spec else {}) for r in rows
            ]
            return Result.ok(events, total_count=total, filtered_count=matching)

        return await _guard(listing())

    async def get_event(self, name: str | int) -> Result[dict[str, Any]]:
        """The event ``name`` (its name or its id)."""

        async def get() -> Result[dict[str, Any]]:
            return Result.ok(event_json(await self._event(name)))

        return await _guard(get())

    async def _event(self, ref: str | int) -> EventRow:
        row = await self.store.get_event(await self._name(ref))
        if row is None:
            raise NotFound(f"no event named '{ref}'")
        return row

    async def _name(self, ref: str | int) -> str:
        """The name of the event ``ref`` stands for: an int is an id; a string is a name,
        or, when it is digits and no event's name, an id."""
        if isinstance(ref, str):
            digits = ref.isascii() and ref.isdigit()
            if not digits or await self.store.get_event(ref) is not None:
                return ref
        name = await self.store.event_name(int(ref)) if 0 < int(ref) <= MAX_ID else None
        return name if name is not None else str(ref)

    async def cancel_event(self, name: str | int) -> Result[dict[str, Any]]:
        """Cancel a user event (by name or id). Config events belong to the config files:
        ``conflict``."""

        async def cancel() -> Result[dict[str, Any]]:
            source = await self.store.cancel_event(await self._name(name), self.clock.now())
            if source is None:
                raise NotFound(f"no event named '{name}'")
            if source != "user":
                raise Conflict(f"event '{name}' belongs to the config files; remove it there")
            return await self.get_event(name)

        return await _guard(cancel())

    async def pause_event(self, name: str | int) -> Result[dict[str, Any]]:
        """Pause the event (by name or id): no runs until resumed."""
        return await self._set_paused(name, True)

    async def resume_event(self, name: str | int) -> Result[dict[str, Any]]:
        """Resume the event (by name or id) from its next occurrence after now."""
        return await self._set_paused(name, False)

    async def _set_paused(self, name: str | int, paused: bool) -> Result[dict[str, Any]]:
        async def change() -> Result[dict[str, Any]]:
            known = await self._name(name)
            if not await self.store.set_paused(known, paused, self.clock.now()):
                raise NotFound(f"no event named '{name}'")
            self.wake()
            return await self.get_event(name)

        return await _guard(change())

    async def execute_now(self, name: str | int) -> Result[dict[str, Any]]:
        """Ask for a run of the event (by name or id) now, outside the schedule (the runner
        starts it at once)."""

        async def trigger() -> Result[dict[str, Any]]:
            if not await self.store.request_run(await self._name(name), self.clock.now()):
                raise NotFound(f"no event named '{name}'")
            self.wake()
            return await self.get_event(name)

        return await _guard(trigger())

    async def get_executions(
        self, name: str | int | None = None, limit: int = 50
    ) -> Result[list[dict[str, Any]]]:
        """The latest executions of the event ``name`` (its name or id; default: of all
        events), newest first. Each has its ``execution_id``."""

        async def history() -> Result[list[dict[str, Any]]]:
            event = None if name is None else (await self._event(name)).name
            rows = await self.store.history(event, limit)
            return Result.ok([execution_json(r) for r in rows])

        return await _guard(history())

    # --- housekeeping -------------------------------------------------------------------

    async def register_cleanup(
        self,
        name: str | Mapping[str, Any] | None = None,
        directory: str | None = None,
        **fields: Any,
    ) -> Result[dict[str, Any]]:
        """Create or replace a user cleanup policy: the config's ``cleanup`` fields
        (``directory``, ``pattern``, ``retention_days``, ``max_files``, ``max_size_mb``,
        ``priority``, ``module_id``, ...), or that mapping itself. Without a name, as the
        module design registers them, the policy is named after its directory and pattern
        (``data["name"]``), so registering the same again replaces it."""

        async def register() -> Result[dict[str, Any]]:
            if isinstance(name, Mapping):
                if directory is not None or fields:
                    raise Invalid("give the policy's mapping alone, or its fields")
                declared = dict(name)
            else:  # the design's keywords; a None name or directory was not given
                given = {"name": name, "directory": directory}
                declared = {k: v for k, v in given.items() if v is not None} | fields
            if "name" not in declared:
                where, pattern = declared.get("directory"), declared.get("pattern", "*")
                declared = {"name": design.cleanup_name(str(where), str(pattern)), **declared}
            spec = self._validated("cleanup", declared)
            refusal = safety.unsafe_directory(spec, self._own_files())
            if refusal:
                raise Invalid(f"directory: {refusal}")
            await self.store.register_cleanup(spec, self.clock.now())
            return Result.ok(spec.to_json())

        return await _guard(register())

    def _own_files(self) -> list[str]:
        """The files no cleanup may delete: ``protected_files`` (e.g. the config files) and
        the database file of this service (SQLite)."""
        url = self.store.engine.url.render_as_string(hide_password=True)
        return safety.own_files(self.protected_files, url)

    async def config_state(self) -> Result[dict[str, Any]]:
        """The applied config: its ``revision``, when, from which files and by which runner
        (``applied_by``) it was applied, and the last error, if any."""

        async def state() -> Result[dict[str, Any]]:
            return Result.ok(await self.store.config_state())

        return await _guard(state())

    async def list_cleanups(self) -> Result[list[dict[str, Any]]]:
        async def listing() -> Result[list[dict[str, Any]]]:
            return Result.ok([p.to_json() for p in await self.store.cleanup_policies()])

        return await _guard(listing())

    async def run_cleanup(
        self,
        dry_run: bool = False,
        policies: Sequence[str] = (),
        config: Config | None = None,
        steps: Steps | None = None,
    ) -> Result[list[dict[str, Any]]]:
        """Run housekeeping now (``policies`` only, if given); returns the reports.

        With ``config`` (``runner cleanup``, which need not follow an apply), its policies
        stand in for the stored config policies, and its files are protected too.
        ``steps`` hears how many policies will run, then of each one done.
        """

        async def clean() -> Result[list[dict[str, Any]]]:
            if config is None:
                known = await self.store.cleanup_policies()
            else:
                known = [*config.cleanups, *await self.store.cleanup_policies(source="user")]
            chosen = housekeeper.chosen(known, policies)
            runner_id = self.runner.runner_id if self.runner else default_runner_id()
            protected = [
                *(self.runner.protected_files if self.runner else []),
                *self._own_files(),
                *(config.files if config else []),
            ]
            told = steps or Steps()
            told.total(sum(1 for p in chosen if p.enabled))
            reports = await run_housekeeping(
                self.store,
                chosen,
                self.settings,
                self.clock.now(),
                runner_id,
                protected,
                dry_run,
                finished=lambda _report: told.done(),
            )
            if self.runner is not None:
                self.runner.count_cleanup(reports)
            return Result.ok([cleanup_json(r) for r in reports])

        return await _guard(clean())


def _parameters_problems(parameters: Any) -> list[str]:
    """Why ``parameters`` cannot be stored (none: an empty list). They are kept with the
    event and shown in every listing, so they must be strict JSON (no NaN or Infinity,
    which no JSON reader accepts) and at most ``MAX_PARAMETERS`` bytes of it."""
    try:
        size = len(json.dumps(parameters or {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        return [f"parameters: not JSON ({exc})"]
    if size > MAX_PARAMETERS:
        return [f"parameters: {size} bytes of JSON, more than the {MAX_PARAMETERS} allowed"]
    return []
