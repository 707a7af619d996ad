"""The database tables. Names follow the module design (``scheduler_*``).

Every timestamp goes through :class:`UTCDateTime`, which refuses naive datetimes and
always hands back aware UTC values, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Column as C
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator, TypeEngine

from runner.store.readonly import sqlite_text

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME column, its values converted by :class:`UTCDateTime` alone."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime. Naive values are a bug and are refused.

    On SQLite the value is text in SQLAlchemy's own format (``YYYY-MM-DD
    HH:MM:SS.ffffff``, naive UTC: it sorts and compares as time), written and read here
    directly: the hot path binds thousands of timestamps a second, and the ``DateTime``
    type's own conversion is several Python calls per value.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return _SQLiteDateTime()  # type: ignore[no-untyped-call]  # SQLAlchemy's __init__
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return sqlite_text(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return _aware(value)

    # On SQLite the conversions below are the processors themselves, one call per value
    # instead of TypeDecorator's wrapper around the methods above (the same values).

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return sqlite_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_instant
        return super().result_processor(dialect, coltype)


def _sqlite_instant(value: Any) -> datetime | None:
    """SQLite's text (naive UTC, as written) as an aware UTC datetime."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value + "+00:00")  # one call, no replace()
        except ValueError:
            pass  # text with an offset of its own
    return _aware(value)


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now_column(name: str) -> C[datetime]:
    return C(name, UTCDateTime(), nullable=False)


events = Table(
    "scheduler_events",
    metadata,
    C("id", Integer, primary_key=True, autoincrement=True),
    C("name", String(100), nullable=False, unique=True),
    C("description", Text, nullable=False, default=""),
    C("module_id", String(100), nullable=True, index=True),
    C("function_name", String(255), nullable=True),
    C("parameters", JSON, nullable=True),
    # "config" events belong to the config files; "user" events to the API / library.
    C("source", String(10), nullable=False),
    C("spec", JSON, nullable=False),
    C("spec_hash", String(64), nullable=False),
    C("schedule_hash", String(64), nullable=False),
    C("recurring", Boolean, nullable=False),
    C("interval_type", String(20), nullable=True),
    C("interval_value", String(100), nullable=True),
    # active | completed | failed | cancelled | removed (left the config, history kept);
    # a pause is kept apart, in "paused".
    C("status", String(20), nullable=False, default="active"),
    C("enabled", Boolean, nullable=False, default=True),
    C("paused", Boolean, nullable=False, default=False),
    C("next_execution", UTCDateTime(), nullable=True),
    C("last_execution", UTCDateTime(), nullable=True),
    C("execution_count", Integer, nullable=False, default=0),
    C("failure_count", Integer, nullable=False, default=0),
    C("max_executions", Integer, nullable=True),
    # The error of the latest run (None when it succeeded), as the module design reads it.
    C("last_error", Text, nullable=True),
    C("config_revision", String(64), nullable=True),
    # The one pending retry of a failed occurrence (a newer occurrence supersedes it).
    C("retry_at", UTCDateTime(), nullable=True),
    C("retry_scheduled_time", UTCDateTime(), nullable=True),
    C("retry_attempt", Integer, nullable=True),
    # Set by `runner trigger` / the API; the runner starts a manual run and clears it.
    C("triggered_at", UTCDateTime(), nullable=True),
    _now_column("created_at"),
    _now_column("updated_at"),
    # The due checks: equality on the runnable state, then a range on the time.
    Index("ix_scheduler_events_due", "status", "enabled", "paused", "next_execution"),
    Index("ix_scheduler_events_retry", "status", "enabled", "paused", "retry_at"),
    Index("ix_scheduler_events_triggered", "triggered_at"),
)

executions = Table(
    "scheduler_executions",
    metadata,
    C("id", Integer, primary_key=True, autoincrement=True),
    C(
        "event_id",
        Integer,
        ForeignKey("scheduler_events.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    C("scheduled_time", UTCDateTime(), nullable=False),
    C("attempt", Integer, nullable=False, default=1),
    # What started it: schedule | retry | manual.
    C("trigger", String(10), nullable=False, default="schedule"),
    # running | succeeded | failed | timed_out | interrupted | skipped | missed | coalesced
    C("outcome", String(20), nullable=False),
    C("success", Boolean, nullable=True),
    # The module design's names in the database; the code's keys stay started_at /
    # finished_at (``executions.c.started_at``), which the engine reads everywhere.
    C("start_time", UTCDateTime(), nullable=True, key="started_at"),
    C("end_time", UTCDateTime(), nullable=True, key="finished_at"),
    C("duration", Float, nullable=True),
    C("result", JSON, nullable=True),
    C("error", Text, nullable=True),
    C("runner_id", String(200), nullable=True),
    C("config_revision", String(64), nullable=True),
    # One id per run, also in the run's log lines and its context (RUNNER_TRACE_ID).
    C("trace_session_id", String(64), nullable=True),
    C("lease_until", UTCDateTime(), nullable=True),
    _now_column("created_at"),
    UniqueConstraint("event_id", "scheduled_time", "attempt", name="uq_scheduler_executions_run"),
    Index("ix_scheduler_executions_outcome", "outcome"),
    Index("ix_scheduler_executions_created_at", "created_at"),
)

cleanup_configs = Table(
    "scheduler_cleanup_configs",
    metadata,
    C("id", Integer, primary_key=True, autoincrement=True),
    C("name", String(100), nullable=False, unique=True),
    C("source", String(10), nullable=False),
    C("spec", JSON, nullable=False),
    C("spec_hash", String(64), nullable=False),
    C("directory", Text, nullable=False),
    C("pattern", String(255), nullable=False),
    # The limits, as columns for SQL readers; the spec holds them too, for the engine.
    C("retention_days", Float, nullable=True),
    C("max_files", Integer, nullable=True),
    C("max_size_mb", Float, nullable=True),
    C("priority", Integer, nullable=False, default=100),
    C("module_id", String(100), nullable=True),
    C("enabled", Boolean, nullable=False, default=True),
    C("config_revision", String(64), nullable=True),
    C("last_run", UTCDateTime(), nullable=True),
    C("last_report", JSON, nullable=True),
    _now_column("created_at"),
    _now_column("updated_at"),
)

# Small facts about the deployment: the applied config revision, its last error, ...
state = Table(
    "scheduler_state",
    metadata,
    C("key", String(100), primary_key=True),
    C("value", JSON, nullable=True),
    _now_column("updated_at"),
)

# One row per policy per housekeeping run: what was scanned, deleted and freed.
cleanup_reports = Table(
    "scheduler_cleanup_reports",
    metadata,
    C("id", Integer, primary_key=True, autoincrement=True),
    C("policy", String(100), nullable=False, index=True),
    C("directory", Text, nullable=False),
    C("dry_run", Boolean, nullable=False),
    C("scanned", Integer, nullable=False),
    C("matched", Integer, nullable=False),
    C("deleted", Integer, nullable=False),
    C("bytes_freed", BigInteger, nullable=False),
    C("errors", JSON, nullable=False),
    C("would_delete", JSON, nullable=False),
    C("started_at", UTCDateTime(), nullable=False, index=True),
    C("duration", Float, nullable=False),
    C("runner_id", String(200), nullable=True),
)
