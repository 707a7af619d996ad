"""The store: every database read and write runner makes, named for what it means.

One implementation serves SQLite and PostgreSQL. Driver errors are wrapped once, here,
into :class:`~runner.errors.StoreError`. Times come in as parameters (from the injected
clock), never from the database's ``now()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from runner import occurrences
from runner.errors import StoreError
from runner.plan import Plan, Stored
from runner.specs import CleanupSpec, Config, EventSpec, FunctionJob
from runner.store import engine as engines
from runner.store.tables import cleanup_configs, events, executions, state

CONFIG_STATE = "config"


@dataclass(frozen=True)
class EventRow:
    """An event as the database holds it: its spec and its runtime state."""

    name: str
    source: str
    spec: EventSpec
    status: str
    paused: bool
    next_execution: datetime | None
    last_execution: datetime | None
    execution_count: int
    failure_count: int
    config_revision: str | None

    @property
    def display_status(self) -> str:
        """``paused`` for a paused or disabled active event, else the lifecycle status."""
        paused = self.paused or not self.spec.enabled
        return "paused" if self.status == "active" and paused else self.status


class Store:
    """The database behind runner. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect to ``url`` and bring its schema up to date."""
        engine = engines.create_engine(url)
        try:
            await engines.migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with engines.write_transaction(self.engine) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {exc}") from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with engines.read_transaction(self.engine) as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {exc}") from exc

    # --- reconcile ----------------------------------------------------------------------

    async def stored_declarations(self) -> tuple[dict[str, Stored], dict[str, Stored]]:
        """Every event and cleanup policy, of both sources, as reconcile compares them."""
        async with self._read() as conn:
            event_rows = await conn.execute(
                select(
                    events.c.name,
                    events.c.source,
                    events.c.spec,
                    events.c.spec_hash,
                    events.c.schedule_hash,
                )
            )
            cleanup_rows = await conn.execute(
                select(
                    cleanup_configs.c.name,
                    cleanup_configs.c.source,
                    cleanup_configs.c.spec,
                    cleanup_configs.c.spec_hash,
                )
            )
            return (
                {
                    r.name: Stored(r.name, r.source, r.spec, r.spec_hash, r.schedule_hash)
                    for r in event_rows
                },
                {r.name: Stored(r.name, r.source, r.spec, r.spec_hash) for r in cleanup_rows},
            )

    async def apply(self, config: Config, plan: Plan, now: datetime) -> None:
        """Carry out ``plan`` for ``config`` in one transaction, and record the revision.

        Only config-owned rows are touched. Updates keep runtime state (next execution,
        counters, last run, a pause) unless the schedule moved, in which case the next
        execution is computed afresh from ``now``.
        """
        specs: dict[tuple[str, str], EventSpec | CleanupSpec] = {
            **{("event", e.name): e for e in config.events},
            **{("cleanup", c.name): c for c in config.cleanups},
        }
        created: dict[str, list[dict[str, Any]]] = {"event": [], "cleanup": []}
        async with self._write() as conn:
            for change in plan.changes:
                table = events if change.kind == "event" else cleanup_configs
                owned = (table.c.name == change.name) & (table.c.source == "config")
                spec = specs.get((change.kind, change.name))
                if spec is None:
                    await conn.execute(delete(table).where(owned))
                elif change.action == "create":
                    created[change.kind].append(
                        _row(spec, config.revision, now) | _runtime(spec, now, True)
                    )
                else:
                    row = _row(spec, config.revision, now)
                    del row["created_at"], row["source"]
                    if change.reschedule:
                        row |= _runtime(spec, now, False)
                    await conn.execute(update(table).where(owned).values(row))
            for kind, table in (("event", events), ("cleanup", cleanup_configs)):
                if created[kind]:
                    await conn.execute(insert(table), created[kind])
            await self._put_state(conn, CONFIG_STATE, _config_state(config, now), now)

    async def record_config_error(self, message: str, now: datetime) -> None:
        """Remember that the latest config could not be applied (the last good one stays)."""
        async with self._write() as conn:
            current = await self._get_state(conn, CONFIG_STATE) or {}
            await self._put_state(
                conn, CONFIG_STATE, current | {"error": message, "error_at": now.isoformat()}, now
            )

    async def config_state(self) -> dict[str, Any]:
        """The applied revision, when, from which files, and the last error (if any)."""
        async with self._read() as conn:
            return await self._get_state(conn, CONFIG_STATE) or {}

    async def _get_state(self, conn: AsyncConnection, key: str) -> dict[str, Any] | None:
        value = await conn.scalar(select(state.c.value).where(state.c.key == key))
        return dict(value) if value else None

    async def _put_state(
        self, conn: AsyncConnection, key: str, value: dict[str, Any], now: datetime
    ) -> None:
        done = await conn.execute(
            update(state).where(state.c.key == key).values(value=value, updated_at=now)
        )
        if done.rowcount == 0:
            await conn.execute(insert(state).values(key=key, value=value, updated_at=now))

    # --- events -------------------------------------------------------------------------

    async def list_events(self) -> list[EventRow]:
        """Every event, ordered by name."""
        async with self._read() as conn:
            rows = await conn.execute(select(events).order_by(events.c.name))
            return [_to_event(r) for r in rows]

    async def get_event(self, name: str) -> EventRow | None:
        async with self._read() as conn:
            row = (await conn.execute(select(events).where(events.c.name == name))).first()
            return _to_event(row) if row else None

    async def count_executions(self) -> int:
        async with self._read() as conn:
            return int(await conn.scalar(select(func.count()).select_from(executions)) or 0)


def _row(spec: EventSpec | CleanupSpec, revision: str, now: datetime) -> dict[str, Any]:
    if isinstance(spec, CleanupSpec):
        return _cleanup_row(spec, "config", revision, now)
    return _event_row(spec, revision, now)


def _runtime(spec: EventSpec | CleanupSpec, now: datetime, reset_counters: bool) -> dict[str, Any]:
    """Runtime columns for a new event, or for one whose schedule moved."""
    if isinstance(spec, CleanupSpec):
        return {}
    values: dict[str, Any] = {
        "status": "active",
        "next_execution": occurrences.first_fire(spec, now),
    }
    if reset_counters:
        values |= {"paused": False, "execution_count": 0, "failure_count": 0}
    return values


def _event_row(spec: EventSpec, revision: str, now: datetime) -> dict[str, Any]:
    kind, value = _interval(spec)
    return {
        "name": spec.name,
        "description": spec.description,
        "module_id": spec.module_id,
        "function_name": spec.job.function if isinstance(spec.job, FunctionJob) else None,
        "parameters": dict(spec.job.parameters) if isinstance(spec.job, FunctionJob) else None,
        "source": "config",
        "spec": spec.to_json(),
        "spec_hash": spec.spec_hash,
        "schedule_hash": spec.schedule_hash,
        "recurring": spec.recurring,
        "interval_type": kind,
        "interval_value": value,
        "enabled": spec.enabled,
        "max_executions": spec.max_executions,
        "config_revision": revision,
        "created_at": now,
        "updated_at": now,
    }


def _interval(spec: EventSpec) -> tuple[str, str]:
    """The module design's ``interval_type`` / ``interval_value`` for a schedule."""
    schedule = spec.schedule
    if "cron" in schedule:
        return "cron", str(schedule["cron"])
    if "at" in schedule:
        return "once", str(schedule["at"])
    every = schedule["every"]
    return "every", every if isinstance(every, str) else ",".join(
        f"{k}={v}" for k, v in every.items()
    )


def _cleanup_row(
    spec: CleanupSpec, source: str, revision: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "name": spec.name,
        "source": source,
        "spec": spec.to_json(),
        "spec_hash": spec.spec_hash,
        "directory": spec.directory,
        "pattern": spec.pattern,
        "priority": spec.priority,
        "module_id": spec.module_id,
        "enabled": spec.enabled,
        "config_revision": revision,
        "created_at": now,
        "updated_at": now,
    }


def _config_state(config: Config, now: datetime) -> dict[str, Any]:
    return {
        "revision": config.revision,
        "applied_at": now.isoformat(),
        "files": list(config.files),
        "error": None,
    }


def _to_event(row: Any) -> EventRow:
    return EventRow(
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
    )
