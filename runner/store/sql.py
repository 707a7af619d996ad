"""The store: every database read and write runner makes, named for what it means.

One implementation serves SQLite and PostgreSQL. Driver errors are wrapped once, here,
into :class:`~runner.errors.StoreError`. Times come in as parameters (from the injected
clock), never from the database's ``now()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Boolean,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from runner import notify, occurrences
from runner.dburl import sqlite_file
from runner.dispatch import Decision, DueEvent, Record, decide, settle
from runner.errors import Conflict, StoreError
from runner.plan import Plan, Stored, diff
from runner.results import (
    CleanupReport,
    EventStatus,
    JobResult,
    Outcome,
    Source,
    Trigger,
)
from runner.specs import CleanupSpec, Config, EventSpec, FunctionJob
from runner.store import engine as engines
from runner.store import hot
from runner.store import reconcile as reconciling
from runner.store.hot import Hot
from runner.store.readonly import CONFIG_STATE, REMOVED
from runner.store.reconcile import cleanup_row, event_row, runtime
from runner.store.reports import last_report, report_row
from runner.store.tables import (
    UTCDateTime,
    cleanup_configs,
    cleanup_reports,
    events,
    executions,
    state,
)

T = TypeVar("T")
log = logging.getLogger("runner.store")
PROCESS_STATE = "process:"  # + execution id: the process group of a running command
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPEC_CACHE = 65536  # parsed specs kept by hash; the cache starts over when full
ANALYZE_AFTER = 1000  # changes of one reconcile after which PostgreSQL's statistics are renewed
# Hot transactions (claims, finishes) between the WAL checkpoints the store runs beside
# them (see Store._checkpoint_beside); a busy claim and finish write about 60 pages.
CHECKPOINT_EVERY = 16
# 16 MB of 4 KiB pages: a WAL this long that a checkpoint could not copy in full (claims
# wrote on meanwhile) is checkpointed after the next claim's commit (Store._checkpoint_wal).
WAL_PAGES = 4000


@dataclass(frozen=True)
class EventRow:
    """An event as the database holds it: its spec and its runtime state."""

    id: int
    name: str
    source: Source
    spec: EventSpec
    status: EventStatus
    paused: bool
    next_execution: datetime | None
    last_execution: datetime | None
    execution_count: int
    failure_count: int
    config_revision: str | None
    last_error: str | None = None

    @property
    def display_status(self) -> str:
        """``paused`` for a paused or disabled active event, else the lifecycle status."""
        paused = self.paused or not self.spec.enabled
        return "paused" if self.status == "active" and paused else self.status


@dataclass(frozen=True)
class ExecutionRow:
    """One execution record, as ``runner history`` shows it."""

    execution_id: int
    event_id: int
    event: str
    scheduled_time: datetime
    attempt: int
    trigger: Trigger
    outcome: Outcome
    start_time: datetime | None
    end_time: datetime | None
    duration: float | None
    result: Any
    error: str | None
    runner_id: str | None
    config_revision: str | None
    trace_session_id: str | None


@dataclass(frozen=True)
class EventFilter:
    """What ``list_events`` narrows to; None means "any" (of the events not removed)."""

    status: str | None = None
    module_id: str | None = None
    function_name: str | None = None
    recurring: bool | None = None
    limit: int | None = None

    def conditions(self) -> list[Any]:
        found: list[Any] = []
        if self.status == "paused":
            found.append((events.c.status == "active") & (events.c.paused | ~events.c.enabled))
        elif self.status == "active":
            found.append((events.c.status == "active") & ~events.c.paused & events.c.enabled)
        elif self.status is not None:
            found.append(events.c.status == self.status)
        else:
            found.append(events.c.status != REMOVED)
        if self.module_id is not None:
            found.append(events.c.module_id == self.module_id)
        if self.function_name is not None:
            found.append(events.c.function_name == self.function_name)
        if self.recurring is not None:
            found.append(events.c.recurring == self.recurring)
        return found


@dataclass(frozen=True)
class Started:
    """A run the runner must start now."""

    execution_id: int
    spec: EventSpec
    record: Record
    replaces_running: bool = False


@dataclass(frozen=True)
class Claim:
    """What one :meth:`Store.start_due` did: the decisions made, the runs to start now,
    when the next thing is due (None: nothing is scheduled), and the ids of the ended
    runs it recorded first (as :meth:`Store.finish` returns them)."""

    decisions: list[tuple[DueEvent, Decision]]
    started: list[Started]
    next_due: datetime | None
    recorded: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Finished:
    """A run that ended, to be recorded by :meth:`Store.finish`."""

    execution_id: int
    spec: EventSpec
    result: JobResult
    started_at: datetime
    ended_at: datetime
    trace_session_id: str = ""


class Store:
    """The database behind runner. Open with :meth:`open`, close with :meth:`close`.

    Leases (who runs what, until when) are the one thing timed by the database's clock
    on PostgreSQL, where several hosts share them and their clocks may disagree; with
    ``database_clock=False`` (SQLite, or tests with a fake clock) they use the ``now``
    passed in, like everything else.
    """

    def __init__(self, engine: AsyncEngine, database_clock: bool | None = None) -> None:
        self.engine = engine
        shared = engine.dialect.name == "postgresql"
        self.database_clock = shared if database_clock is None else database_clock
        # SQLite has one writer at a time. Taking turns here, rather than in SQLite's busy
        # handler (which sleeps and retries), keeps this process's writes quick.
        self._write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self.write_error: str | None = None  # why the latest write failed, if it did
        self._file: tuple[str, tuple[int, int]] | None = None  # an SQLite file, as opened
        self._specs: dict[str, EventSpec] = {}
        # The files whose change says another process wrote (an SQLite file in WAL mode).
        self._files: tuple[str, ...] = ()
        self._seen: tuple[tuple[int, int, int] | None, ...] = ()
        self._watch: notify.Watch | None = None  # inotify on the SQLite file's directory
        self._written = False  # what the watch heard since changed() was last asked
        # SQLite: the claim's and the finish's statements, sent through the driver itself.
        sqlite = engine.dialect.name == "sqlite" and not self.database_clock
        self._hot = _HotStatements(engine.dialect) if sqlite else None
        self._hot_commits = 0  # since the last checkpoint the store ran (see _transact)
        self._checkpoint: asyncio.Task[None] | None = None
        self._wal_behind = False  # the next hot commit checkpoints (see _checkpoint_wal)

    @property
    def shared(self) -> bool:
        """Whether other runners may share this database (PostgreSQL), not only this one."""
        return self.engine.dialect.name == "postgresql"

    def changed(self) -> bool:
        """Whether the database may have been written since the last call, answered
        without a query where possible: for an SQLite file, whether it or its WAL
        changed (as :meth:`notify_writes` heard, else two ``stat`` calls); elsewhere
        always True. Our own writes count too."""
        if self._watch is not None:
            written, self._written = self._written, False
            return written
        if not self._files:
            return True
        seen = tuple(_signature(path) for path in self._files)
        if seen == self._seen:
            return False
        self._seen = seen
        return True

    def notify_writes(self, callback: Callable[[], None]) -> bool:
        """From now on, call ``callback`` in the event loop as soon as anyone, this
        process included, writes to the database. True if this store can: an SQLite file
        whose directory inotify watches. Otherwise only polling :meth:`changed` tells."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if not self._files:
            return False
        names = {os.path.realpath(path) for path in self._files}  # SQLite follows links

        def heard(path: str) -> None:
            if path in names or not path:  # "": the kernel lost events
                self._written = True
                callback()

        directory = os.path.dirname(os.path.realpath(self._files[0]))
        self._watch = notify.watch_directories([directory], heard)
        self._written = True  # what happened before the watch began is not known
        return self._watch is not None

    @classmethod
    async def open(cls, url: str, database_clock: bool | None = None) -> Store:
        """Connect to ``url`` and bring its schema up to date."""
        engine = engines.create_engine(url)
        try:
            await engines.migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        store = cls(engine, database_clock)
        path = sqlite_file(url)
        if path is not None:
            store._file = (path, _identity(path))
            store._files = (path, f"{path}-wal")
        return store

    def problem(self) -> str | None:
        """Why what is written may not last, or None: the latest write failed (a full
        disk, a lost connection), or the SQLite file opened is no longer at its path (a
        deleted file takes writes, to the deleted inode, until the process ends)."""
        if self._file is not None:
            path, opened = self._file
            try:
                now = _identity(path)
            except FileNotFoundError:
                return f"the database file {path} was deleted"
            if now != opened:
                return f"the database file {path} was replaced"
        return self.write_error

    def _lease_now(self, now: datetime) -> Any:
        """The instant leases are compared with."""
        return func.now() if self.database_clock else literal(now, UTCDateTime())

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        await self.engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        turn = self._write_turn or contextlib.nullcontext()
        try:
            async with turn, engines.write_transaction(self.engine) as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise self._write_failed(exc) from exc
        self.write_error = None

    async def _transact(self, work: Callable[[_Ops], T]) -> T:
        """``work`` in one write transaction, given the claim's and the finish's
        statements (:class:`_Ops`). On SQLite it runs as one call on the driver's thread
        (:func:`runner.store.hot.in_transaction`), elsewhere through SQLAlchemy's
        ``run_sync``."""
        if self._hot is None:
            shared, database_clock = self.shared, self.database_clock
            async with self._write() as conn:
                return await conn.run_sync(lambda sync: work(_SqlOps(sync, shared, database_clock)))
        assert self._write_turn is not None
        statements = self._hot
        try:
            async with self._write_turn, self.engine.connect() as conn:
                result = await hot.in_transaction(conn, lambda db: work(_HotOps(db, statements)))
                if self._wal_behind:  # what _checkpoint_wal could not keep up with
                    await self._checkpoint_wal(conn)
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:
            raise self._write_failed(exc) from exc
        self.write_error = None
        self._hot_commits += 1
        if self._hot_commits >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._hot_commits = 0
            self._checkpoint = asyncio.create_task(self._checkpoint_beside())
        return result

    async def _checkpoint_beside(self) -> None:
        """Copy the WAL into the database file beside the hot path, on a connection (and
        driver thread) of its own, while claims and finishes go on: SQLite would do it in
        the commit of a claim once the WAL holds 1,000 pages, and the claim would wait
        for it (a few percent of a burst)."""
        try:
            async with self.engine.connect() as conn:
                await self._checkpoint_wal(conn)
        except Exception:  # best effort, in the background: the next turn tries again
            log.warning("could not checkpoint the database's WAL", exc_info=True)
            self._wal_behind = True
        finally:
            self._checkpoint = None

    async def _checkpoint_wal(self, conn: AsyncConnection) -> None:
        """Checkpoint on ``conn`` and note whether the WAL is behind: it holds
        :data:`WAL_PAGES` or more and not all of them could be copied, because claims
        wrote on meanwhile (a writer starts the WAL over only once all of it has been
        copied). Then the next hot transaction checkpoints right after its commit, under
        the write turn, and the WAL starts over at the write after that. A failure leaves
        it behind, logged."""
        try:
            pages, copied = await hot.checkpoint(conn)
        except (SQLAlchemyError, OSError, sqlite3.Error):
            log.warning("could not checkpoint the database's WAL", exc_info=True)
            self._wal_behind = True
            return
        self._wal_behind = pages >= WAL_PAGES and copied < pages

    def _write_failed(self, exc: Exception) -> StoreError:
        if isinstance(exc, _WRITE_FAILED):
            self.write_error = f"database write failed: {exc}"  # not a refused value
        return StoreError(f"database write failed: {exc}")

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with engines.read_transaction(self.engine) as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database read failed: {exc}") from exc

    # --- reconcile ----------------------------------------------------------------------

    async def stored_declarations(self) -> tuple[dict[str, Stored], dict[str, Stored]]:
        """Every event and cleanup policy, of both sources, as reconcile compares them."""
        async with self._read() as conn:
            return await conn.run_sync(reconciling.declarations)

    async def reconcile(
        self,
        config: Config,
        now: datetime,
        allow_empty: bool = False,
        runner_id: str | None = None,
    ) -> tuple[Plan, dict[str, Any]]:
        """Plan ``config`` against the database (:func:`~runner.plan.diff`) and carry the
        plan out, in one transaction.

        Several runners may reconcile at once: on PostgreSQL an advisory lock makes them
        take turns, each planning against what the one before wrote. Nothing is written
        when the plan has conflicts or refuses an empty config, or when the same revision
        is already applied. Only config-owned rows are touched; updates keep runtime state
        (next execution, counters, last run, a pause) unless the schedule moved. Returns
        the plan and the config state found before.

        On PostgreSQL, a plan of :data:`ANALYZE_AFTER` changes or more is followed by
        ``ANALYZE`` of the events: until autovacuum gets to it (a minute or more), the
        planner would take thousands of new due events for a handful and sort them all
        on every claim instead of walking the due index.
        """
        async with self._write() as conn:
            previous, stored_events, stored_cleanups = await conn.run_sync(reconciling.begin)
            # Planning thousands of events takes a while: not on the event loop.
            plan = await asyncio.to_thread(
                diff, config, stored_events, stored_cleanups, allow_empty
            )
            await conn.run_sync(reconciling.finish, config, plan, previous, now, runner_id)
        written = not (plan.conflicts or plan.refused_empty)
        if self.shared and written and len(plan.changes) >= ANALYZE_AFTER:
            async with self._write() as conn:
                await conn.execute(text(f"ANALYZE {events.name}"))
        return plan, previous

    async def record_config_error(self, message: str, now: datetime) -> None:
        """Remember that the latest config could not be applied (the last good one stays)."""
        async with self._write() as conn:
            current = await conn.run_sync(reconciling.get_state, CONFIG_STATE) or {}
            error = {"error": message, "error_at": now.isoformat()}
            await conn.run_sync(reconciling.put_state, CONFIG_STATE, current | error, now)

    async def config_state(self) -> dict[str, Any]:
        """The applied revision, when, from which files, and the last error (if any)."""
        async with self._read() as conn:
            return await conn.run_sync(reconciling.get_state, CONFIG_STATE) or {}

    # --- events -------------------------------------------------------------------------

    async def list_events(self, filters: EventFilter | None = None) -> list[EventRow]:
        """Events matching ``filters`` (all but removed ones by default), ordered by name."""
        filters = filters or EventFilter()
        query = select(events).order_by(events.c.name).where(*filters.conditions())
        if filters.limit is not None:
            query = query.limit(filters.limit)
        async with self._read() as conn:
            return [_to_event(r) for r in await conn.execute(query)]

    async def count_events(self, filters: EventFilter | None = None) -> int:
        """How many events match ``filters`` (ignoring its limit)."""
        filters = filters or EventFilter()
        query = select(func.count()).select_from(events).where(*filters.conditions())
        async with self._read() as conn:
            return int(await conn.scalar(query) or 0)

    async def events_by_status(self) -> dict[str, int]:
        """Event counts by displayed status (``paused`` for paused or disabled active ones)."""
        paused = events.c.paused | ~events.c.enabled
        status = case((and_(events.c.status == "active", paused), "paused"), else_=events.c.status)
        query = select(status, func.count()).group_by(status)
        async with self._read() as conn:
            return {name: count for name, count in await conn.execute(query)}

    async def create_user_event(self, spec: EventSpec, now: datetime) -> None:
        """Add an event owned by the API/library; reconcile never touches it.

        Raises :class:`Conflict` when the name is taken (by a config or user event).
        """
        row = event_row(spec, None, now) | {"source": "user"} | runtime(spec, now, True)
        try:
            async with self._write() as conn:
                await conn.execute(insert(events).values(row))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise Conflict(f"an event named '{spec.name}' already exists") from exc
            raise

    async def cancel_event(self, name: str, now: datetime) -> str | None:
        """Cancel a user event (no further runs; history kept). Returns the event's source,
        None when there is no such event; config events are left alone."""
        async with self._write() as conn:
            source = await conn.scalar(select(events.c.source).where(events.c.name == name))
            if source == "user":
                values = {"status": "cancelled", "next_execution": None, "retry_at": None}
                where = events.c.name == name
                await conn.execute(update(events).where(where).values(**values, updated_at=now))
            return source

    async def get_event(self, name: str) -> EventRow | None:
        """The event named ``name``, or None."""
        async with self._read() as conn:
            row = (await conn.execute(select(events).where(events.c.name == name))).first()
            return _to_event(row) if row else None

    async def event_name(self, event_id: int) -> str | None:
        """The name of the event whose id is ``event_id``, or None."""
        async with self._read() as conn:
            name = await conn.scalar(select(events.c.name).where(events.c.id == event_id))
            return str(name) if name is not None else None

    # --- running ------------------------------------------------------------------------

    async def start_due(
        self,
        now: datetime,
        runner_id: str,
        limit: int,
        revision: str | None,
        lease_seconds: float,
        due_by: datetime | None = None,
        finished: Sequence[Finished] = (),
    ) -> Claim:
        """Record ``finished`` (as :meth:`finish` does), then take up to ``limit`` due
        events, oldest first, decide what each does (:func:`~runner.dispatch.decide`), and
        write the decisions: one transaction.

        Due means: active, enabled, not paused, with a retry or the next occurrence at or
        before ``due_by`` (default ``now``); or with a manual trigger. The transaction
        makes this exclusive across runners (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
        write lock on SQLite). Every statement is one round trip for the whole batch: the
        events' new state in one executemany, the execution records in another. Returns
        the decisions, the runs to start (each with its execution id and a lease), and
        when the next thing is due afterwards.
        """
        due_by = due_by or now
        if not limit and not finished:
            return Claim([], [], await self.next_due())
        claim = (now, runner_id, limit, revision, lease_seconds, due_by, finished)
        return await self._transact(lambda ops: self._claim_in(ops, *claim))

    def _claim_in(
        self,
        ops: _Ops,
        now: datetime,
        runner_id: str,
        limit: int,
        revision: str | None,
        lease_seconds: float,
        due_by: datetime,
        finished: Sequence[Finished],
    ) -> Claim:
        """:meth:`start_due` in the transaction of ``ops``."""
        recorded = self._finish_in(ops, finished, runner_id)
        found = ops.due_rows(due_by, limit) if limit else []
        rows = list({row.id: row for row in found}.values())  # one row per event
        if not rows:
            return Claim([], [], ops.next_due(), recorded)
        running = ops.running_counts([row.id for row in rows])
        decided = [
            (row, event, decide(event, due_by, now))
            for row in rows
            for event in (self._to_due(row, running),)
        ]
        changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row, _, decision in decided:
            values = _decision_values(row, decision, now)
            columns = tuple(name for name in _DECIDED if values[f"b_{name}"] != getattr(row, name))
            changed.setdefault(columns, []).append(values)
        for columns, rows_changed in changed.items():
            ops.many(_set_decision(columns), rows_changed)
        records = [(event, decision, r) for _, event, decision in decided for r in decision.records]
        started: list[Started] = []
        if records:
            lease_until = ops.lease_end(now, lease_seconds)
            rows_out = [
                _execution_row(event.id, record, now, runner_id, revision, lease_until)
                for event, _, record in records
            ]
            ids = {(r.event_id, r.scheduled_time, r.attempt): r.id for r in ops.insert(rows_out)}
            started = [
                Started(
                    ids[event.id, record.scheduled_time, record.attempt],
                    event.spec,
                    record,
                    decision.replace_running,
                )
                for event, decision, record in records
                if record.outcome == "running"
            ]
        decisions = [(event, decision) for _, event, decision in decided]
        return Claim(decisions, started, ops.next_due(), recorded)

    def _to_due(self, row: Any, running: dict[int, int]) -> DueEvent:
        return DueEvent(
            id=row.id,
            spec=self._spec(row.spec_hash, row.spec),
            next_execution=row.next_execution,
            execution_count=row.execution_count,
            running=running.get(row.id, 0),
            retry_at=row.retry_at,
            retry_scheduled_time=row.retry_scheduled_time,
            retry_attempt=row.retry_attempt,
            triggered_at=row.triggered_at,
        )

    def _spec(self, spec_hash: str, data: dict[str, Any] | str) -> EventSpec:
        """The spec of a stored event, parsed once per distinct spec (by its hash); ``data``
        is the stored JSON, as text where the query did not decode it."""
        spec = self._specs.get(spec_hash)
        if spec is None:
            if len(self._specs) >= SPEC_CACHE:
                self._specs.clear()
            parsed = json.loads(data) if isinstance(data, str) else data
            spec = self._specs[spec_hash] = EventSpec.from_json(parsed)
        return spec

    async def finish(self, finished: Sequence[Finished], runner_id: str) -> set[int]:
        """Record how runs ended and settle their events (retry, completion): all in one
        transaction, each statement one round trip for the whole batch.

        Only the runner holding a run may finish it: a run that was taken over (its lease
        expired and it was recovered elsewhere) is left as the new owner wrote it. Returns
        the ids of the runs recorded.
        """
        if not finished:
            return set()
        return await self._transact(lambda ops: self._finish_in(ops, finished, runner_id))

    @staticmethod
    def _finish_in(ops: _Ops, finished: Sequence[Finished], runner_id: str) -> set[int]:
        """:meth:`finish` in the transaction of ``ops``."""
        if not finished:
            return set()
        by_id = {f.execution_id: f for f in finished}
        runs = ops.owned(list(by_id), runner_id)
        if not runs:
            return set()
        ended = [by_id[run.id] for run in runs]
        ops.many(
            _SET_FINISHED,
            [_finished_values(f.execution_id, f.result, f.started_at, f.ended_at) for f in ended],
        )
        settled = zip(runs, ended, strict=True)
        runs_ended = [(run, f.spec, f.result, f.ended_at) for run, f in settled]
        settling = _settle_values(runs_ended)
        if len({values["b_id"] for values in settling}) < len(settling):
            ops.many(_SETTLE, settling)  # an event's runs settle in the order they ended
        else:
            ops.many(_SETTLE, [values for values in settling if values["b_retry"]])
            ops.many(_SETTLE_NO_RETRY, [values for values in settling if not values["b_retry"]])
        # The runs' process groups, if any were recorded (commands only), ended with them.
        processes = [
            f"{PROCESS_STATE}{run.id}"
            for run, f in zip(runs, ended, strict=True)
            if not isinstance(f.spec.job, FunctionJob)
        ]
        if processes:
            ops.forget_processes(processes)
        return {run.id for run in runs}

    async def renew_leases(
        self, execution_ids: list[int], runner_id: str, now: datetime, lease_seconds: float
    ) -> set[int]:
        """Extend this runner's lease on its running executions; returns those it still holds."""
        if not execution_ids:
            return set()
        mine = (
            executions.c.id.in_(execution_ids)
            & (executions.c.runner_id == runner_id)
            & (executions.c.outcome == "running")
        )
        async with self._write() as conn:
            until = await conn.run_sync(_lease_end, self.database_clock, now, lease_seconds)
            rows = await conn.execute(
                update(executions).where(mine).values(lease_until=until).returning(executions.c.id)
            )
            return set(rows.scalars())

    async def recover(self, now: datetime, everything: bool = False) -> int:
        """Record runs left ``running`` by a dead runner as failed, and apply the retry policy.

        A run is abandoned when its lease has expired, or, with ``everything`` (the only
        runner of an SQLite file, at start), whatever its lease. Stale event claims are
        released too. Returns how many runs were recovered.
        """
        async with self._write() as conn:
            stale: Any = executions.c.outcome == "running"
            if not everything:
                stale &= executions.c.lease_until < self._lease_now(now)
            rows = (
                await conn.execute(
                    select(
                        executions.c.id,
                        executions.c.event_id,
                        executions.c.attempt,
                        executions.c.scheduled_time,
                        executions.c.runner_id,
                        events.c.spec,
                        events.c.spec_hash,
                    )
                    .join(events, events.c.id == executions.c.event_id)
                    .where(stale)
                )
            ).all()
            if not rows:
                return 0
            stopped_results = [_stopped(row.runner_id) for row in rows]
            stopped = zip(rows, stopped_results, strict=True)
            await conn.execute(
                _SET_FINISHED, [_finished_values(r.id, s, None, now) for r, s in stopped]
            )
            specs = [self._spec(row.spec_hash, row.spec) for row in rows]
            settled = zip(rows, specs, stopped_results, strict=True)
            ended = [(row, spec, result, now) for row, spec, result in settled]
            await conn.execute(_SETTLE, _settle_values(ended))
            return len(rows)

    async def next_due(self, settled: bool = False) -> datetime | None:
        """The earliest time anything runnable is due (a trigger: at once). Answered from
        the due indexes, so it stays cheap however many events wait.

        ``settled``: once a write in progress has committed. Another process's write to
        an SQLite file is announced (:meth:`notify_writes`) as it reaches the WAL, just
        before its commit can be read: a plain read at that moment would miss it, one
        under the write lock cannot. The lock is taken and left without writing."""
        if settled and self._hot is not None:
            return await self._transact(lambda ops: ops.next_due())
        async with self._read() as conn:
            return _earliest_due_of((await conn.execute(_NEXT_DUE)).one())

    async def request_run(self, name: str, now: datetime) -> bool:
        """Ask the runner to run ``name`` now (``runner trigger``); False if it does not exist."""
        async with self._write() as conn:
            done = await conn.execute(
                update(events).where(events.c.name == name).values(triggered_at=now, updated_at=now)
            )
            return done.rowcount > 0

    async def set_paused(self, name: str, paused: bool, now: datetime) -> bool:
        """Pause or resume ``name``. A resumed recurring event continues from its next
        occurrence after ``now``: what fell in the pause is not made up."""
        async with self._write() as conn:
            row = (
                await conn.execute(
                    select(events.c.spec, events.c.next_execution).where(events.c.name == name)
                )
            ).first()
            if row is None:
                return False
            values: dict[str, Any] = {"paused": paused, "updated_at": now}
            spec = EventSpec.from_json(row.spec)
            if (
                not paused
                and spec.recurring
                and row.next_execution is not None
                and row.next_execution < now
            ):
                values["next_execution"] = occurrences.next_fire(spec, now)
            await conn.execute(update(events).where(events.c.name == name).values(values))
            return True

    async def history(
        self, name: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[ExecutionRow]:
        """The latest executions (of ``name``, or of all events), newest first, skipping the
        ``offset`` newest (to page back)."""
        query = (
            select(executions, events.c.name)
            .join(events, events.c.id == executions.c.event_id)
            .order_by(executions.c.scheduled_time.desc(), executions.c.attempt.desc())
            .limit(limit)
            .offset(offset)
        )
        if name is not None:
            query = query.where(events.c.name == name)
        async with self._read() as conn:
            return [_to_execution(row) for row in await conn.execute(query)]

    async def purge_history(self, before: datetime, batch: int = 1000) -> int:
        """Delete finished executions (in batches) and housekeeping reports older than
        ``before``; returns how many executions went."""
        total = 0
        while True:
            async with self._write() as conn:
                ids = (
                    select(executions.c.id)
                    .where(executions.c.finished_at < before, executions.c.outcome != "running")
                    .limit(batch)
                )
                done = await conn.execute(
                    delete(executions).where(executions.c.id.in_(ids.scalar_subquery()))
                )
            total += done.rowcount
            if done.rowcount < batch:
                break
        async with self._write() as conn:
            await conn.execute(delete(cleanup_reports).where(cleanup_reports.c.started_at < before))
            # A removed event is kept for its history; with the history gone, it goes too.
            has_history = select(executions.c.id).where(executions.c.event_id == events.c.id)
            await conn.execute(
                delete(events).where(events.c.status == REMOVED, ~has_history.exists())
            )
        return total

    # --- housekeeping -------------------------------------------------------------------

    async def cleanup_policies(self, source: str | None = None) -> list[CleanupSpec]:
        """The stored cleanup policies (of one source, or all), by priority then name."""
        query = select(cleanup_configs.c.spec).order_by(
            cleanup_configs.c.priority, cleanup_configs.c.name
        )
        if source is not None:
            query = query.where(cleanup_configs.c.source == source)
        async with self._read() as conn:
            return [CleanupSpec.from_json(spec) for spec in await conn.scalars(query)]

    async def register_cleanup(self, spec: CleanupSpec, now: datetime) -> None:
        """Create or replace a user (library/API) policy; a config policy's name is refused."""
        async with self._write() as conn:
            source = await conn.scalar(
                select(cleanup_configs.c.source).where(cleanup_configs.c.name == spec.name)
            )
            if source == "config":
                raise Conflict(f"cleanup policy '{spec.name}' belongs to the config files")
            row = cleanup_row(spec, "user", None, now)
            if source is None:
                await conn.execute(insert(cleanup_configs).values(row))
            else:
                del row["created_at"]
                where = cleanup_configs.c.name == spec.name
                await conn.execute(update(cleanup_configs).where(where).values(row))

    async def save_cleanup_reports(
        self, reports: list[CleanupReport], runner_id: str, now: datetime
    ) -> None:
        """Store each policy's report and remember it as the policy's last run."""
        if not reports:
            return
        async with self._write() as conn:
            rows = [report_row(r, runner_id) for r in reports]
            await conn.execute(insert(cleanup_reports), rows)
            for report, row in zip(reports, rows, strict=True):
                await conn.execute(
                    update(cleanup_configs)
                    .where(cleanup_configs.c.name == report.policy)
                    .values(last_run=now, last_report=last_report(row), updated_at=now)
                )

    async def cleanup_reports(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest housekeeping reports, newest first."""
        query = select(cleanup_reports).order_by(cleanup_reports.c.id.desc()).limit(limit)
        async with self._read() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    # --- processes of running commands (see runner.orphans) ------------------------------

    async def record_process(
        self, execution_id: int, process: dict[str, Any], now: datetime
    ) -> None:
        """Remember the process group running ``execution_id``, until :meth:`forget_process`."""
        async with self._write() as conn:
            key = f"{PROCESS_STATE}{execution_id}"
            await conn.run_sync(reconciling.put_state, key, process, now)

    async def forget_process(self, execution_id: int) -> None:
        async with self._write() as conn:
            await conn.execute(delete(state).where(state.c.key == f"{PROCESS_STATE}{execution_id}"))

    async def orphaned_processes(self) -> dict[int, dict[str, Any]]:
        """The recorded process groups of runs no longer running (recovered after their
        runner died, or gone), by execution id: what a dead runner left behind."""
        async with self._read() as conn:
            rows = await conn.execute(
                select(state.c.key, state.c.value).where(state.c.key.startswith(PROCESS_STATE))
            )
            recorded = {int(r.key.removeprefix(PROCESS_STATE)): dict(r.value) for r in rows}
            if not recorded:
                return {}
            running = await conn.execute(
                select(executions.c.id).where(
                    executions.c.id.in_(list(recorded)), executions.c.outcome == "running"
                )
            )
            for execution_id in running.scalars():
                del recorded[execution_id]
            return recorded


def on_store(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store at ``url``, await ``work`` on it and close it, in an event loop of
    its own: a one-shot command's session with the database."""

    async def session() -> T:
        store = await Store.open(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(session())


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _settle_values(
    runs: Sequence[tuple[Any, EventSpec, JobResult, datetime]],
) -> list[dict[str, Any]]:
    """The parameters of :data:`_SETTLE` for the events of ended runs (each: the run's
    event_id, attempt and scheduled_time; its spec, result and end): a retry, or the
    event's end when nothing more is to come. The run's error is the event's
    ``last_error`` (none after a success)."""
    values = []
    for run, spec, ended, ended_at in runs:
        result = settle(spec, ended.outcome, run.attempt, ended_at)
        retry = result.retry_at is not None
        values.append(
            {
                "b_id": run.event_id,
                "b_failed": result.failed,
                "b_retry": retry,
                "b_retry_at": result.retry_at,
                "b_retry_attempt": result.retry_attempt,
                "b_retry_scheduled_time": run.scheduled_time if retry else None,
                "b_final_status": result.final_status,
                "b_last_error": ended.error,
                "b_now": ended_at,
            }
        )
    return values


def _to_event(row: Any) -> EventRow:
    return EventRow(
        id=row.id,
        name=row.name,
        source=row.source,
        spec=EventSpec.from_json(row.spec),
        status=row.status,
        paused=row.paused,
        next_execution=row.next_execution,
        last_execution=row.last_execution,
        execution_count=row.execution_count,
        failure_count=row.failure_count,
        config_revision=row.config_revision,
        last_error=row.last_error,
    )


def _runnable() -> Any:
    return (events.c.status == "active") & events.c.enabled & ~events.c.paused


def _due_parts() -> list[tuple[Any, Any]]:
    """What makes an event due by the ``due_by`` parameter, in three parts, each one
    index range and the column that index orders it by: runnable events whose next
    occurrence or retry has come, and any with a manual trigger."""
    runnable = _runnable()
    due_by = bindparam("due_by", type_=UTCDateTime())
    return [
        (runnable & (events.c.next_execution <= due_by), events.c.next_execution),
        (runnable & (events.c.retry_at <= due_by), events.c.retry_at),
        # ">= epoch", not "IS NOT NULL": SQLite uses the index only for a range.
        ((events.c.triggered_at >= EPOCH) & _triggerable(), events.c.triggered_at),
    ]


def _limited_due_rows(locked: bool) -> Any:
    """The claim: up to ``claim_limit`` due events, oldest first; on PostgreSQL
    (``locked``) each row locked (``FOR UPDATE SKIP LOCKED``) and read as locked.

    Each part of :func:`_due_parts` is a query of its own on the one table, walking its
    index in order and stopping at the limit, so a claim reads about ``claim_limit`` rows
    however many are due. The shape matters: ``id IN (union of the parts)`` sorted every
    due event on each claim (a burst of 10,000 sorted 10,000 rows for the first claim of
    100, 9,900 for the next...), and on PostgreSQL every row another runner had claimed
    since the statement began made it recheck the row (EvalPlanQual) by running the
    whole union again, minutes for a second runner's first claim in a burst of 10,000.
    Here a recheck reads the one row. The columns come from the locking queries
    themselves: a row another runner changed after the statement's snapshot is read as
    locked, not as the snapshot saw it. An event due in two parts appears twice (the
    caller keeps one); up to three times the limit may be locked, and those beyond it
    are left as they were.
    """
    limit = bindparam("claim_limit", type_=Integer())
    parts = []
    for i, (where, order) in enumerate(_due_parts()):
        part = select(*_CLAIM_COLUMNS).where(where).order_by(order).limit(limit)
        parts.append((part.with_for_update(skip_locked=True) if locked else part).cte(f"due_{i}"))
    claimed = union_all(*(select(part) for part in parts)).subquery("claimed")
    return select(claimed).order_by(claimed.c.next_execution).limit(limit)


def _triggerable() -> Any:
    """A manual run is for any event not cancelled or removed, paused or ended ones too:
    asking for it is the intent."""
    return events.c.status.not_in(["cancelled", REMOVED])


def _decision_values(row: Any, decision: Decision, now: datetime) -> dict[str, Any]:
    """The parameters of :func:`_set_decision`: the event's columns after ``decision``,
    every one given (from the locked row where the decision keeps it)."""
    run = decision.run
    counted = run is not None and run.trigger == "schedule"  # as max_executions counts
    keep_retry = not decision.clear_retry
    return {
        "b_id": row.id,
        "b_next_execution": decision.next_execution,
        "b_status": decision.status,
        "b_last_execution": max(now, run.start_at) if run is not None else row.last_execution,
        "b_execution_count": row.execution_count + counted,
        "b_retry_at": row.retry_at if keep_retry else None,
        "b_retry_scheduled_time": row.retry_scheduled_time if keep_retry else None,
        "b_retry_attempt": row.retry_attempt if keep_retry else None,
        "b_triggered_at": None if decision.clear_trigger else row.triggered_at,
        "b_now": now,
    }


def _stopped(runner_id: str | None) -> JobResult:
    """How a run left ``running`` by a runner that died is recorded."""
    return JobResult(
        "failed", error=f"runner stopped: {runner_id} ended without finishing this run"
    )


def _finished_values(
    execution_id: int, result: JobResult, started_at: datetime | None, ended_at: datetime
) -> dict[str, Any]:
    """The parameters of :data:`_SET_FINISHED` for one ended run."""
    duration = None if started_at is None else (ended_at - started_at).total_seconds()
    return {
        "b_id": execution_id,
        "b_started_at": started_at,
        "b_outcome": result.outcome,
        "b_success": result.outcome == "succeeded",
        "b_finished_at": ended_at,
        "b_duration": duration,
        "b_result": result.result,
        "b_error": result.error,
    }


def _execution_row(
    event_id: int,
    record: Record,
    now: datetime,
    runner_id: str,
    revision: str | None,
    lease_until: Any,
) -> dict[str, Any]:
    running = record.outcome == "running"
    return {
        "event_id": event_id,
        "scheduled_time": record.scheduled_time,
        "attempt": record.attempt,
        "trigger": record.trigger,
        "outcome": record.outcome,
        "success": None if running else False,
        # Planned: a run claimed ahead starts at its time; finish() writes when it did.
        "started_at": max(now, record.start_at) if running else None,
        "finished_at": None if running else now,
        "error": record.error,
        "runner_id": runner_id,
        "config_revision": revision,
        "trace_session_id": record.trace_session_id,
        "lease_until": lease_until if running else None,
        "created_at": now,
    }


def _to_execution(row: Any) -> ExecutionRow:
    return ExecutionRow(
        execution_id=row.id,
        event_id=row.event_id,
        event=row.name,
        scheduled_time=row.scheduled_time,
        attempt=row.attempt,
        trigger=row.trigger,
        outcome=row.outcome,
        start_time=row.started_at,
        end_time=row.finished_at,
        duration=row.duration,
        result=row.result,
        error=row.error,
        runner_id=row.runner_id,
        config_revision=row.config_revision,
        trace_session_id=row.trace_session_id,
    )


def _earliest(column: Any, where: Any) -> Any:
    return select(func.min(column)).where(where, column.is_not(None)).scalar_subquery()


# Built once: the runner asks this every check_interval, even when idle.
_NEXT_DUE = select(
    _earliest(events.c.next_execution, _runnable()),
    _earliest(events.c.retry_at, _runnable()),
    _earliest(events.c.triggered_at, _triggerable()),
)


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _earliest_due_of(row: Sequence[datetime | None]) -> datetime | None:
    times = [t for t in row if t is not None]
    return min(times) if times else None


def _param(name: str, column: Any) -> Any:
    return bindparam(f"b_{name}", type_=column.type)


# The hot path's statements, built once and compiled once (SQLAlchemy caches them).
_INSERT_EXECUTIONS = insert(executions).returning(
    executions.c.id, executions.c.event_id, executions.c.scheduled_time, executions.c.attempt
)
# An event's run state: what a claim reads of it and its decision writes back.
_RUN_STATE = (
    "next_execution",
    "last_execution",
    "execution_count",
    "retry_at",
    "retry_scheduled_time",
    "retry_attempt",
    "triggered_at",
)
# What a claim reads of each due event: its run state, and its spec as stored text, parsed
# only when its hash is new to this process (a recurring event's spec is parsed once).
_CLAIM_COLUMNS = (
    events.c.id,
    events.c.spec_hash,
    events.c.status,
    *(events.c[name] for name in _RUN_STATE),
    cast(events.c.spec, Text).label("spec"),
)
_DUE_ROWS = _limited_due_rows(locked=False)
_LOCKED_DUE_ROWS = _limited_due_rows(locked=True)
# What a claim's decision may change of an event.
_DECIDED = ("status", *_RUN_STATE)


@functools.cache
def _set_decision(columns: tuple[str, ...]) -> Any:
    """The update of the events whose decision changes ``columns`` (of :data:`_DECIDED`),
    and ``updated_at``: a claim groups its events by what changes. Only those columns are
    SET, because SQLite updates the indexes of every column SET, changed or not (a
    scheduled run's decision cost 6.5 us a row with them all, 3.7 with what changes)."""
    values = {name: _param(name, events.c[name]) for name in columns}
    return (
        update(events)
        .where(events.c.id == bindparam("b_id"))
        .values(values | {"updated_at": _param("now", events.c.updated_at)})
    )


_SET_FINISHED = (
    update(executions)
    .where(executions.c.id == bindparam("b_id"))
    .values(
        {
            name: _param(name, executions.c[name])
            for name in ("outcome", "success", "finished_at", "duration", "result", "error")
        }
        | {"lease_until": None}
        # The run's true start; a recovered run (never seen to start here) keeps the planned.
        | {
            "started_at": func.coalesce(
                _param("started_at", executions.c.started_at), executions.c.started_at
            )
        }
    )
)
_retry = bindparam("b_retry", type_=Boolean())
# Nothing more to come (no next occurrence, no retry): the event has ended. SET sees the
# row as it was, so these conditions read the state before this update.
_ended = (
    (events.c.status == "active") & events.c.next_execution.is_(None) & events.c.retry_at.is_(None)
)


def _settle(retry_columns: bool) -> Any:
    """The update of the events of ended runs (:func:`_settle_values`): the failure
    count, the last error, and a retry or the event's end. Without ``retry_columns``,
    for runs not retried (most): the retry columns are not SET at all, which spares
    SQLite the retry index (see :func:`_set_decision`)."""
    values: dict[str, Any] = {
        "failure_count": case(
            (bindparam("b_failed", type_=Boolean()), events.c.failure_count + 1), else_=0
        ),
        "last_error": _param("last_error", events.c.last_error),
        "updated_at": _param("now", events.c.updated_at),
    }
    ended: Any = _ended
    if retry_columns:
        values |= {
            name: case((_retry, _param(name, events.c[name])), else_=events.c[name])
            for name in ("retry_at", "retry_attempt", "retry_scheduled_time")
        }
        ended = ~_retry & _ended
    values["status"] = case((ended, _param("final_status", events.c.status)), else_=events.c.status)
    return update(events).where(events.c.id == bindparam("b_id")).values(values)


_SETTLE = _settle(retry_columns=True)
_SETTLE_NO_RETRY = _settle(retry_columns=False)

_WRITE_FAILED = (OperationalError, InterfaceError, OSError, sqlite3.OperationalError)
# The columns of an execution record as a claim writes it (see _execution_row).
_CLAIMED_COLUMNS = (
    "event_id",
    "scheduled_time",
    "attempt",
    "trigger",
    "outcome",
    "success",
    "started_at",
    "finished_at",
    "error",
    "runner_id",
    "config_revision",
    "trace_session_id",
    "lease_until",
    "created_at",
)


_OWNED_COLUMNS = (
    executions.c.id,
    executions.c.event_id,
    executions.c.attempt,
    executions.c.scheduled_time,
)


def _running_query(events_in: Any) -> Any:
    """How many runs are in progress of each event that ``events_in`` (a condition on
    ``event_id``) admits."""
    running = select(executions.c.event_id, func.count()).where(
        events_in, executions.c.outcome == "running"
    )
    return running.group_by(executions.c.event_id)


def _owned_query(runs_in: Any, runner_id: Any) -> Any:
    """Of the runs that ``runs_in`` (a condition on ``id``) admits, those ``runner_id``
    still holds: each with its event, attempt and scheduled time."""
    mine = runs_in & (executions.c.runner_id == runner_id) & (executions.c.outcome == "running")
    return select(*_OWNED_COLUMNS).where(mine)


def _in_json(column: Any, name: str) -> Any:
    """``column IN`` the elements of the JSON array bound as ``name`` (SQLite): one
    statement, compiled once, for lists of any length."""
    elements = func.json_each(bindparam(name, type_=Text())).table_valued("value")
    return column.in_(select(elements.c.value))


class _HotStatements:
    """The claim's and the finish's statements compiled for SQLite (see runner.store.hot)."""

    def __init__(self, dialect: Any) -> None:
        self.due = Hot(_DUE_ROWS, dialect)
        self.next_due = Hot(_NEXT_DUE, dialect)
        claimed = {
            executions.c[k]: bindparam(k, type_=executions.c[k].type) for k in _CLAIMED_COLUMNS
        }
        self.insert = Hot(
            insert(executions).values(claimed).returning(*_INSERT_EXECUTIONS.exported_columns),
            dialect,
        )
        self._dialect = dialect
        self._of: dict[Any, Hot] = {}
        self.running = Hot(_running_query(_in_json(executions.c.event_id, "b_ids")), dialect)
        runner_id = bindparam("b_runner_id", type_=Text())
        self.owned = Hot(_owned_query(_in_json(executions.c.id, "b_ids"), runner_id), dialect)
        self.forget = Hot(delete(state).where(_in_json(state.c.key, "b_keys")), dialect)

    def of(self, statement: Any) -> Hot:
        """``statement`` (one of the claim's or the finish's updates) compiled, once."""
        found = self._of.get(statement)
        if found is None:
            found = self._of[statement] = Hot(statement, self._dialect)
        return found


def _lease_end(conn: Connection, database_clock: bool, now: datetime, seconds: float) -> datetime:
    """The end of a lease of ``seconds`` taken at ``now`` (by the database's clock when
    leases are timed by it), as a value."""
    start = conn.scalar(select(func.now())) if database_clock else now
    assert isinstance(start, datetime)
    return start + timedelta(seconds=seconds)


class _Ops(Protocol):
    """The claim's and the finish's statements, in one write transaction (see
    :meth:`Store._transact`): :class:`_HotOps` on SQLite, :class:`_SqlOps` elsewhere."""

    def many(self, statement: Any, values: Sequence[dict[str, Any]]) -> None:
        """``statement`` once per parameter set: one executemany."""

    def due_rows(self, due_by: datetime, limit: int) -> list[Any]:
        """Up to ``limit`` rows of due events, oldest first, which this transaction holds:
        on SQLite by its write lock, on PostgreSQL locked row by row. An event due in two
        ways (:func:`_due_parts`) comes twice."""

    def next_due(self) -> datetime | None:
        """When the next thing is due (:meth:`Store.next_due`)."""

    def insert(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Insert execution records; each one's id, event_id, scheduled_time and attempt
        (in any order: the three identify it)."""

    def running_counts(self, event_ids: list[int]) -> dict[int, int]:
        """How many runs of each of ``event_ids`` are in progress (absent: none)."""

    def owned(self, execution_ids: list[int], runner_id: str) -> list[Any]:
        """Of ``execution_ids``, the runs ``runner_id`` still holds (locked till the end of
        the transaction): each with its event, attempt and scheduled time."""

    def forget_processes(self, keys: list[str]) -> None:
        """Delete these keys of the state table."""

    def lease_end(self, now: datetime, seconds: float) -> datetime:
        """The end of a lease of ``seconds`` taken at ``now`` (:func:`_lease_end`)."""


@dataclass
class _HotOps:
    """:class:`_Ops` on an SQLite connection, on its driver's thread (runner.store.hot)."""

    db: sqlite3.Connection
    statements: _HotStatements

    def many(self, statement: Any, values: Sequence[dict[str, Any]]) -> None:
        self.statements.of(statement).many(self.db, values)

    def due_rows(self, due_by: datetime, limit: int) -> list[Any]:
        return self.statements.due.rows(self.db, {"due_by": due_by, "claim_limit": limit})

    def next_due(self) -> datetime | None:
        (row,) = self.statements.next_due.rows(self.db, {})
        return _earliest_due_of(row)

    def insert(self, rows: list[dict[str, Any]]) -> list[Any]:
        return self.statements.insert.insert(self.db, rows)

    def running_counts(self, event_ids: list[int]) -> dict[int, int]:
        rows = self.statements.running.rows(self.db, {"b_ids": json.dumps(event_ids)})
        return {event_id: count for event_id, count in rows}

    def owned(self, execution_ids: list[int], runner_id: str) -> list[Any]:
        values = {"b_ids": json.dumps(execution_ids), "b_runner_id": runner_id}
        return self.statements.owned.rows(self.db, values)

    def forget_processes(self, keys: list[str]) -> None:
        self.statements.forget.many(self.db, [{"b_keys": json.dumps(keys)}])

    def lease_end(self, now: datetime, seconds: float) -> datetime:
        return now + timedelta(seconds=seconds)  # the hot path runs on the clock passed in


@dataclass
class _SqlOps:
    """:class:`_Ops` on a SQLAlchemy connection (in ``run_sync``): PostgreSQL, or SQLite
    with leases timed by the database's clock."""

    conn: Connection
    shared: bool
    database_clock: bool

    def many(self, statement: Any, values: Sequence[dict[str, Any]]) -> None:
        if values:
            self.conn.execute(statement, values)

    def due_rows(self, due_by: datetime, limit: int) -> list[Any]:
        claim = _LOCKED_DUE_ROWS if self.shared else _DUE_ROWS
        return list(self.conn.execute(claim, {"due_by": due_by, "claim_limit": limit}).all())

    def next_due(self) -> datetime | None:
        return _earliest_due_of(self.conn.execute(_NEXT_DUE).one())

    def insert(self, rows: list[dict[str, Any]]) -> list[Any]:
        return list(self.conn.execute(_INSERT_EXECUTIONS, rows))

    def running_counts(self, event_ids: list[int]) -> dict[int, int]:
        rows = self.conn.execute(_running_query(executions.c.event_id.in_(event_ids)))
        return {event_id: count for event_id, count in rows}

    def owned(self, execution_ids: list[int], runner_id: str) -> list[Any]:
        owned = _owned_query(executions.c.id.in_(execution_ids), runner_id)
        if self.shared:
            owned = owned.with_for_update()
        return list(self.conn.execute(owned).all())

    def forget_processes(self, keys: list[str]) -> None:
        self.conn.execute(delete(state).where(state.c.key.in_(keys)))

    def lease_end(self, now: datetime, seconds: float) -> datetime:
        return _lease_end(self.conn, self.database_clock, now, seconds)
