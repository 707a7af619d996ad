"""``runner run``: the long-running process. Reconcile, execute, watch the config, serve
the API, and stop cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from runner import logs, reconciler, safety
from runner.clock import Clock
from runner.dburl import sqlite_file
from runner.errors import RunnerError
from runner.loop import Runner
from runner.metrics import Metrics
from runner.orphans import default_runner_id
from runner.specs import Config
from runner.store.sql import Store

log = logging.getLogger("runner")

# Allocations between collections of the youngest generation (Python's default: 700).
GC_THRESHOLD = 50_000


# A runner that applied this many declarations starts afresh once they are in the
# database: it executes itself again (same pid, same lock), so the long-running process
# holds its imports and not what parsing, checking and applying them left behind. Python
# keeps a 1 MiB arena while any object in it lives, and a few caches filled meanwhile
# (schema, compiled statements) pin about 30 MiB for 10,000 events.
FRESH_START = 1000


@dataclass(frozen=True)
class Options:
    config_path: str
    database_url: str
    once: bool = False
    watch: bool = True
    applied: bool = False  # the config is in the database already (a fresh start)


def worth_a_fresh_start(config: Config, options: Options) -> bool:
    declared = len(config.events) + len(config.cleanups)
    return not options.once and declared >= FRESH_START and hasattr(os, "memfd_create")


async def apply(url: str, config: Config, clock: Clock) -> None:
    """Apply ``config`` as the runner does at start (see :func:`serve`)."""
    store = await Store.open(url)
    try:
        await reconciler.apply(store, config, clock.now(), runner_id=default_runner_id())
    finally:
        await store.close()


def start_afresh(argv: Sequence[str], config: Config, lock: int | None) -> NoReturn:
    """Execute ``runner run`` again in this process with ``argv``, handing it the applied
    config's summary and the runner lock through an inherited descriptor."""
    handover = os.memfd_create("runner-handover", 0)  # inheritable: no MFD_CLOEXEC
    os.write(handover, pickle.dumps((config.summary(), lock)))
    if lock is not None:
        os.set_inheritable(lock, True)
    logs.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "runner", *argv, "--handover", str(handover)]
    os.execv(sys.executable, command)


def handed_over(fd: int) -> tuple[Config, int | None]:
    """What :func:`start_afresh` handed over: the applied config and the lock held."""
    with os.fdopen(fd, "rb") as handover:
        handover.seek(0)
        config, lock = pickle.load(handover)
    return config, lock


async def serve(options: Options, config: Config, environ: Mapping[str, str], clock: Clock) -> int:
    """Run until stopped (or, with ``once``, until what is due now has run). Exit status."""
    store = await Store.open(options.database_url)
    try:
        runner_id = default_runner_id()
        if not options.applied:
            await reconciler.apply(store, config, clock.now(), runner_id=runner_id)
        metrics = Metrics()
        metrics.info.labels(runner_id, config.revision[:12]).set(1)
        protected = safety.own_files(config.files, options.database_url)
        live = reconciler.LiveConfig(
            [options.config_path], environ, store, clock, config, metrics, runner_id
        )
        runner = Runner(
            store,
            config.settings,
            clock,
            runner_id,
            revision=lambda: live.current.revision,
            protected_files=protected,
            metrics=metrics,
        )
        live.subscribe(runner.reconfigure)
        del config  # applied: what it declares is in the database now, not in memory
        _settle_heap()
        # An SQLite file has one runner (us, holding its lock): whatever is running is stale.
        alone = sqlite_file(options.database_url) is not None
        recovered = await store.recover(clock.now(), everything=alone)
        if recovered:
            log.warning("recovered %d runs left running by a stopped runner", recovered)
        await runner.stop_orphans()  # before a retry of theirs can start
        if options.once:
            await runner.run_once()
            return 0
        return await _serve_forever(options, runner, live)
    finally:
        await store.close()


def _settle_heap() -> None:
    """Collect what start-up left behind (the parsed config) and freeze the rest (modules,
    the engine): the collector never walks those again. And collect young objects less
    often: a burst creates thousands of objects a second, and with the default threshold
    (700) the full collections it triggers paused the loop for 50-200 ms each (measured,
    10k events). Memory is still reclaimed by reference counting as it always is; only
    the search for cycles runs less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


async def _serve_forever(options: Options, runner: Runner, live: reconciler.LiveConfig) -> int:
    stop = asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        log.info("%s received: stopping", signum.name)
        stop.set()
        runner.stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, live.reload_on_signal)
    api = await _start_api(runner, live) if live.current.settings.api.listen else None
    watcher = asyncio.create_task(live.watch(stop)) if options.watch else None
    revision = live.current.revision[:12]
    log.info("runner started", extra={"runner_id": runner.runner_id, "revision": revision})
    await runner.run()
    await runner.shutdown(live.current.settings.shutdown_grace)
    for task in (watcher, api):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    log.info("runner stopped")
    return 0


async def _start_api(runner: Runner, live: reconciler.LiveConfig) -> asyncio.Task[None]:
    """Serve the HTTP API in this event loop; raises RunnerError if it cannot."""
    try:
        from runner import api
    except ImportError as exc:
        raise RunnerError(
            f"settings.api.listen needs the API extra: pip install 'runner[api]' ({exc})"
        ) from exc
    from runner.service import SchedulerService

    service = SchedulerService(
        runner.store,
        live.current.settings,
        runner.clock,
        runner=runner,
        protected_files=runner.protected_files,
    )
    live.subscribe(service.reconfigure)
    state = api.State(
        service=service,
        metrics=runner.metrics,
        clock=runner.clock,
        api=lambda: live.current.settings.api,
        config_error=lambda: live.error,
        heartbeat=lambda: runner.last_tick,
        check_interval=lambda: runner.settings.check_interval,
        next_turn=lambda: runner.sleeping_until,
    )
    return await api.start(state, live.current.settings.api.listen or "")
