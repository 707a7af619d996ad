"""Reconcile's reads and writes: a config's declarations against the stored rows.

Synchronous SQLAlchemy Core on one connection inside a write transaction. The store runs
it on its async connection (``run_sync``: the event loop runs while the driver works);
``runner apply`` and ``runner plan`` run it on a plain SQLite connection
(:func:`runner.store.engine.open_sqlite`), without asyncio, a driver thread or SQLAlchemy's
asyncio extension. Only config-owned rows are written; nothing here reads the clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)

from runner import occurrences, schedules
from runner.plan import Plan, Stored, diff
from runner.specs import CleanupSpec, Config, EventSpec, FunctionJob
from runner.store.readonly import (
    CLEANUPS,
    CONFIG_STATE,
    EVENTS,
    REMOVED,
    stored,
    writes_nothing,
)
from runner.store.tables import cleanup_configs, events, state

T = TypeVar("T")
RECONCILE_LOCK_KEY = 0x72756E6E6572 + 1  # beside the migration lock


def reconcile(
    conn: Connection,
    config: Config,
    now: datetime,
    allow_empty: bool = False,
    runner_id: str | None = None,
) -> tuple[Plan, dict[str, Any]]:
    """Plan ``config`` against the rows and carry the plan out, on ``conn`` (in a write
    transaction): :func:`begin`, :func:`~runner.plan.diff`, :func:`finish`. Returns the
    plan and the config state found before."""
    previous, stored_events, stored_cleanups = begin(conn)
    plan = diff(config, stored_events, stored_cleanups, allow_empty)
    finish(conn, config, plan, previous, now, runner_id)
    return plan, previous


def begin(conn: Connection) -> tuple[dict[str, Any], dict[str, Stored], dict[str, Stored]]:
    """Start reconciling: on PostgreSQL, wait for any other reconcile to end (an advisory
    lock held to the end of the transaction), so that each plans against what the one
    before wrote. Returns the config state and every stored event and policy."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RECONCILE_LOCK_KEY})
    previous = get_state(conn, CONFIG_STATE) or {}
    return (previous, *declarations(conn))


def finish(
    conn: Connection,
    config: Config,
    plan: Plan,
    previous: Mapping[str, Any],
    now: datetime,
    runner_id: str | None,
) -> None:
    """Carry ``plan`` out and record ``config`` as applied. Nothing is written when the
    plan has conflicts or refuses an empty config, or when it is empty and the same
    revision is applied already (without an error since)."""
    if writes_nothing(config, plan, previous):
        return
    carry_out(conn, config, plan, now)
    put_state(conn, CONFIG_STATE, config_state(config, now, runner_id), now)


def get_state(conn: Connection, key: str) -> dict[str, Any] | None:
    """The value stored under ``key`` in the state table, or None."""
    value = conn.scalar(select(state.c.value).where(state.c.key == key))
    return dict(value) if value else None


def put_state(conn: Connection, key: str, value: dict[str, Any], now: datetime) -> None:
    """Store ``value`` under ``key``, replacing what was there."""
    done = conn.execute(update(state).where(state.c.key == key).values(value=value, updated_at=now))
    if done.rowcount == 0:
        conn.execute(insert(state).values(key=key, value=value, updated_at=now))


def declarations(conn: Connection) -> tuple[dict[str, Stored], dict[str, Stored]]:
    """Every stored event and policy. Their specs are read as JSON text and decoded only
    when the plan reads one (an update lists its changed values): re-applying a config
    compares hashes, and decoding thousands of specs would be most of its time."""
    return stored(conn.exec_driver_sql(EVENTS), conn.exec_driver_sql(CLEANUPS))


def carry_out(conn: Connection, config: Config, plan: Plan, now: datetime) -> None:
    """Write ``plan``: one statement per kind of change, each executed for many rows, so
    a large reload holds the database (and the loop's writes) briefly."""
    specs: dict[tuple[str, str], EventSpec | CleanupSpec] = {
        **{("event", e.name): e for e in config.events},
        **{("cleanup", c.name): c for c in config.cleanups},
    }
    first_fire = _first_fires()
    created: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    updated: dict[tuple[Table, frozenset[str]], list[dict[str, Any]]] = defaultdict(list)
    gone: dict[Table, list[str]] = defaultdict(list)
    for change in plan.changes:
        table = events if change.kind == "event" else cleanup_configs
        spec = specs.get((change.kind, change.name))
        if spec is None:
            gone[table].append(change.name)
        elif change.action == "create" and not change.revive:
            row = _row(spec, config.revision, now) | runtime(spec, now, True, first_fire)
            created[table].append(row)
        else:
            row = _row(spec, config.revision, now)
            del row["created_at"], row["source"]
            if change.reschedule or change.revive:
                row |= runtime(spec, now, False, first_fire) | {"retry_at": None}
            updated[(table, frozenset(row))].append(row)
    # In batches, so that the parameters of one statement fit (and, on the store's async
    # connection, the event loop runs between them).
    for (table, columns), rows in updated.items():
        for chunk in _batches(rows):
            conn.execute(_update_owned(table, columns), [_bound(row) for row in chunk])
    for table, names in gone.items():
        for some in _batches(names):
            owned = table.c.name.in_(some) & (table.c.source == "config")
            if table is events:
                conn.execute(update(events).where(owned).values(_retired(now)))
            else:
                conn.execute(delete(table).where(owned))
    for table, new in created.items():
        for rows in _batches(new):
            conn.execute(insert(table), rows)


def _first_fires() -> Callable[[EventSpec, datetime], datetime | None]:
    """:func:`occurrences.first_fire`, computed once per schedule for events without
    jitter: a large config declares the same schedule many times."""
    found: dict[tuple[str, datetime], datetime | None] = {}

    def first_fire(spec: EventSpec, now: datetime) -> datetime | None:
        if spec.jitter:  # the offset depends on the name
            return occurrences.first_fire(spec, now)
        key = (spec.schedule_hash, now)
        if key not in found:
            found[key] = occurrences.first_fire(spec, now)
        return found[key]

    return first_fire


def _batches(items: list[T], size: int = 500) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _update_owned(table: Table, columns: frozenset[str]) -> Any:
    """UPDATE of the config-owned row named ``:b_name``, setting ``columns`` from
    ``:b_<column>`` (bound names must differ from column names)."""
    owned = (table.c.name == bindparam("b_name")) & (table.c.source == "config")
    values: dict[str, Any] = {c: bindparam(f"b_{c}") for c in columns - {"name"}}
    return update(table).where(owned).values(values)


def _bound(row: dict[str, Any]) -> dict[str, Any]:
    return {f"b_{column}": value for column, value in row.items()}


def _retired(now: datetime) -> dict[str, Any]:
    """An event that left the config: nothing more runs, its history stays."""
    nothing = ("next_execution", "retry_at", "retry_attempt", "retry_scheduled_time")
    return {"status": REMOVED, "triggered_at": None, "updated_at": now} | dict.fromkeys(nothing)


def _row(spec: EventSpec | CleanupSpec, revision: str, now: datetime) -> dict[str, Any]:
    if isinstance(spec, CleanupSpec):
        return cleanup_row(spec, "config", revision, now)
    return event_row(spec, revision, now)


def runtime(
    spec: EventSpec | CleanupSpec,
    now: datetime,
    reset_counters: bool,
    first_fire: Callable[[EventSpec, datetime], datetime | None] = occurrences.first_fire,
) -> dict[str, Any]:
    """Runtime columns for a new event, or for one whose schedule moved."""
    if isinstance(spec, CleanupSpec):
        return {}
    values: dict[str, Any] = {"status": "active", "next_execution": first_fire(spec, now)}
    if reset_counters:
        values |= {"paused": False, "execution_count": 0, "failure_count": 0}
    return values


def event_row(spec: EventSpec, revision: str | None, now: datetime) -> dict[str, Any]:
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
    """The module design's ``interval_type`` / ``interval_value`` for a schedule: ``cron``
    and its expression, ``once`` and its time, or a unit (``minutes`` … ``months``) and
    how many."""
    schedule = spec.schedule
    if "cron" in schedule:
        return "cron", str(schedule["cron"])
    if "at" in schedule:
        return "once", str(schedule["at"])
    count, unit = schedules.parse_every(schedule["every"])
    return unit, str(count)


def cleanup_row(
    spec: CleanupSpec, source: str, revision: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "name": spec.name,
        "source": source,
        "spec": spec.to_json(),
        "spec_hash": spec.spec_hash,
        "directory": spec.directory,
        "pattern": spec.pattern,
        "retention_days": spec.retention_days,
        "max_files": spec.max_files,
        "max_size_mb": spec.max_size_mb,
        "priority": spec.priority,
        "module_id": spec.module_id,
        "enabled": spec.enabled,
        "config_revision": revision,
        "created_at": now,
        "updated_at": now,
    }


def config_state(config: Config, now: datetime, runner_id: str | None) -> dict[str, Any]:
    return {
        "applied_by": runner_id,
        "revision": config.revision,
        "applied_at": now.isoformat(),
        "files": list(config.files),
        "error": None,
    }
