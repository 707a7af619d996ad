"""Config → database: plan the difference and apply it, all or nothing.

A running runner does it on its store (:func:`apply`, :class:`LiveConfig`); the commands
that only reconcile once do it on the database's URL (:func:`apply_to`, :func:`plan_of`),
which on SQLite needs neither asyncio nor the store's imports."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from runner import config as configs
from runner import notify
from runner.clock import Clock
from runner.errors import Conflict, RunnerError
from runner.plan import Plan, diff
from runner.specs import Config, Settings
from runner.store import readonly

if TYPE_CHECKING:  # a running runner's: `runner apply` and `plan` do without them
    from runner.metrics import Metrics
    from runner.store.sql import Store

log = logging.getLogger("runner.config")
CONTESTED_WINDOW = timedelta(minutes=10)
# A file still being written is not applied: it must hold still this long (seconds), but
# a file that never stops changing is applied after SETTLE_LIMIT all the same.
SETTLE_QUIET = 0.3
SETTLE_LIMIT = 10.0
# How long the first change of a burst waits for the rest before the files are read.
DEBOUNCE = 0.1

EMPTY_REFUSAL = (
    "the config declares no events and no cleanup policies, but the database holds some "
    "from an earlier config; refusing to delete them all (a truncated file or a bad mount?). "
    "Run `runner apply --allow-empty` if that is the intent."
)


async def plan(store: Store, config: Config, allow_empty: bool = False) -> Plan:
    """What applying ``config`` would change."""
    stored_events, stored_cleanups = await store.stored_declarations()
    return diff(config, stored_events, stored_cleanups, allow_empty)


def plan_of(url: str, config: Config) -> Plan:
    """What applying ``config`` to the database at ``url`` would change (its schema is
    brought up to date first, as opening the store does)."""
    found = _read_sqlite(url)
    if found is not None:
        return diff(config, *found[1:])
    from runner.store import engine as engines
    from runner.store import reconcile as reconciling

    engine = engines.open_sqlite(url)
    if engine is None:
        from runner.store.sql import on_store

        return on_store(url, lambda store: plan(store, config))
    try:
        with engines.sync_transaction(engine, write=False) as conn:
            return diff(config, *reconciling.declarations(conn))
    finally:
        engine.dispose()


def apply_to(url: str, config: Config, now: datetime, allow_empty: bool = False) -> Plan:
    """:func:`apply` ``config`` once to the database at ``url``, as ``runner apply`` does:
    the same transaction and the same refusals, without a running store. A config that is
    applied already is known as such from the SQLite file without the store's imports."""
    found = _read_sqlite(url)
    if found is not None:
        previous, stored_events, stored_cleanups = found
        result = diff(config, stored_events, stored_cleanups, allow_empty)
        if readonly.writes_nothing(config, result, previous):
            return _carried_out(result, previous, config, None, now)
    from runner.store import engine as engines
    from runner.store import reconcile as reconciling

    engine = engines.open_sqlite(url)
    if engine is None:
        from runner.store.sql import on_store

        return on_store(url, lambda store: apply(store, config, now, allow_empty))
    try:
        with engines.sync_transaction(engine) as conn:
            result, previous = reconciling.reconcile(conn, config, now, allow_empty)
    finally:
        engine.dispose()
    return _carried_out(result, previous, config, None, now)


def _read_sqlite(url: str) -> readonly.Declared | None:
    """What the SQLite file ``url`` names holds (:func:`readonly.read`); None for other
    databases, URLs with options (``?...``) and whatever that cannot read."""
    path = readonly.path_of(url)
    if path is None:
        return None
    try:
        return readonly.read(path)
    except sqlite3.Error:  # the store reads it again, and says what is wrong
        return None


async def apply(
    store: Store,
    config: Config,
    now: datetime,
    allow_empty: bool = False,
    runner_id: str | None = None,
) -> Plan:
    """Apply ``config`` in one transaction and return the plan carried out.

    Raises :class:`Conflict`, applying nothing, when the config takes the name of a user
    event or would empty a database that holds config declarations. Applying the same
    config twice writes nothing the second time.
    """
    result, previous = await store.reconcile(config, now, allow_empty, runner_id)
    return _carried_out(result, previous, config, runner_id, now)


def _carried_out(
    result: Plan, previous: Mapping[str, Any], config: Config, runner_id: str | None, now: datetime
) -> Plan:
    """``result``, the plan reconcile carried out; :class:`Conflict` for one it refused."""
    if result.conflicts:
        raise Conflict("; ".join(result.conflicts))
    if result.refused_empty:
        raise Conflict(EMPTY_REFUSAL)
    _warn_if_contested(previous, config, runner_id, now)
    return result


def _warn_if_contested(
    previous: Mapping[str, Any], config: Config, runner_id: str | None, now: datetime
) -> None:
    """Say so when another runner applied a different config recently: two configs are
    live at once (a rolling update, or replicas with different files). Neither runner
    reapplies on its own, so they do not thrash; the last to start or reload wins."""
    other = previous.get("applied_by")
    if not other or other == runner_id or previous.get("revision") == config.revision:
        return
    applied_at = datetime.fromisoformat(previous["applied_at"])
    if now - applied_at < CONTESTED_WINDOW:
        log.warning(
            "config revision %s replaces %s, applied by %s %.0fs ago: two configs are live "
            "(a rolling update?); the last runner to apply wins",
            config.revision[:12],
            str(previous.get("revision"))[:12],
            other,
            (now - applied_at).total_seconds(),
        )


class LiveConfig:
    """The config a running runner works from: reloaded on change, the last good one kept.

    An invalid edit is logged problem by problem (``file:line:col``), recorded in the
    database for ``runner list`` and readiness, and otherwise ignored.
    """

    def __init__(
        self,
        paths: Sequence[str],
        environ: Mapping[str, str],
        store: Store,
        clock: Clock,
        current: Config,
        metrics: Metrics | None = None,
        runner_id: str | None = None,
    ) -> None:
        self.paths = list(paths)
        self.environ = environ
        self.store = store
        self.clock = clock
        self.current = current.summary()  # the declarations are in the database
        self._subscribers: list[Callable[[Settings], None]] = []
        self.error: str | None = None
        if metrics is None:
            from runner.metrics import Metrics

            metrics = Metrics()
        self.metrics = metrics
        self.runner_id = runner_id
        # What to watch: directories (a file's parent), and the file names that matter.
        self.directories = sorted(
            {p if os.path.isdir(p) else os.path.dirname(os.path.abspath(p)) for p in self.paths}
        )
        self.names = {os.path.basename(p) for p in self.paths if not os.path.isdir(p)}
        self._signalled: set[asyncio.Task[None]] = set()

    async def reload(self) -> bool:
        """Load, validate and apply the config files; True when they were applied."""
        now = self.clock.now()
        report = await asyncio.to_thread(configs.validate, self.paths, self.environ, now)
        if report.config is None:
            for problem in report.errors:
                log.error("config: %s", problem.render())
            return await self._refused(
                f"{len(report.errors)} errors, first: {report.errors[0].render()}"
            )
        try:
            result = await apply(self.store, report.config, now, runner_id=self.runner_id)
        except Conflict as exc:
            log.error("config: %s", exc)
            return await self._refused(str(exc))
        self.current, self.error = report.config.summary(), None
        self.metrics.reloads.labels("applied").inc()
        self.metrics.config_error.set(0)
        if not result.empty:
            log.info(
                "config applied: %s", result.summary(), extra={"revision": report.config.revision}
            )
        for subscriber in self._subscribers:
            subscriber(report.config.settings)
        return True

    def reload_on_signal(self) -> None:
        """SIGHUP: reload the config now, as daemons do (also with ``--no-watch``)."""
        log.info("SIGHUP received: reloading the config")
        task = asyncio.create_task(self._reload_logged())
        self._signalled.add(task)  # a reference, or the task may be collected mid-way
        task.add_done_callback(self._signalled.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception:
            log.exception("config reload failed; still running the last good config")

    def subscribe(self, subscriber: Callable[[Settings], None]) -> None:
        """Call ``subscriber`` with the settings of every config applied from now on."""
        self._subscribers.append(subscriber)

    async def _refused(self, message: str) -> bool:
        self.error = message
        self.metrics.reloads.labels("refused").inc()
        self.metrics.config_error.set(1)
        log.warning("config not applied; still running revision %s", self.current.revision[:12])
        await self.store.record_config_error(message, self.clock.now())
        return False

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload whenever a config file changes, until ``stop`` is set.

        Watches the directories (a single file's parent), so editors' atomic renames and
        Kubernetes' ``..data`` symlink swap are seen. Changes are debounced. On Linux the
        kernel says when something changed (inotify), and nothing wakes before; elsewhere
        watchfiles looks twice a second.
        """
        changed = asyncio.Event()

        def heard(path: str) -> None:
            if not path or self._relevant(path):  # "": events were lost
                changed.set()

        watch = notify.watch_directories(self.directories, heard)
        if watch is None:
            await self._watch_polling(stop)
            return
        stopping = asyncio.ensure_future(stop.wait())
        stopping.add_done_callback(lambda _: changed.set())
        try:
            while True:
                await changed.wait()
                if stop.is_set():
                    return
                await asyncio.sleep(DEBOUNCE)  # one reload for a burst of changes
                changed.clear()  # what changes from here on is reloaded again
                await self.settled()
                await self._reload_logged()
        finally:
            stopping.cancel()
            watch.close()

    def _relevant(self, path: str) -> bool:
        name = os.path.basename(path)
        if name.startswith(".."):
            return True  # Kubernetes swaps ..data to publish a new ConfigMap
        return name in self.names if self.names else name.endswith(configs.YAML_SUFFIXES)

    async def _watch_polling(self, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        async for _ in awatch(
            *self.directories,
            watch_filter=lambda _change, path: self._relevant(path),
            stop_event=stop,
            debounce=400,
            step=500,  # the watcher wakes every step to look for stop: twice a second
            recursive=False,
        ):
            await self.settled()
            await self._reload_logged()

    async def settled(self) -> None:
        """Return once the config files have held still for :data:`SETTLE_QUIET` seconds.

        An editor or deploy tool that rewrites a file in place, slowly, shows half a file
        for a while; half a file can be valid YAML that declares half the events.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + SETTLE_LIMIT
        seen = await asyncio.to_thread(self._fingerprint)
        while loop.time() < give_up:
            await asyncio.sleep(SETTLE_QUIET)
            now = await asyncio.to_thread(self._fingerprint)
            if now == seen:
                return
            seen = now
        log.warning("config files kept changing for %gs; applying them as they are", SETTLE_LIMIT)

    def _fingerprint(self) -> list[tuple[str, int, int] | str]:
        """Name, size and modification time of each config file (a change shows in one)."""
        found: list[tuple[str, int, int] | str] = []
        try:
            files = configs.config_files(self.paths)
        except (OSError, RunnerError) as exc:  # reload will say what is wrong
            return [str(exc)]
        for path in files:
            try:
                stat = os.stat(path)
            except OSError as exc:
                found.append(f"{path}: {exc.strerror}")
            else:
                found.append((str(path), stat.st_size, stat.st_mtime_ns))
        return found
