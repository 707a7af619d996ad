"""Initial schema: events, executions, cleanup configs and state.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Timestamps are plain ``DateTime(timezone=True)`` here; ``UTCDateTime`` in the tables
module only converts values on the way in and out.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    _create_events()
    _create_executions()
    _create_cleanup_configs()
    _create_state()


def downgrade() -> None:
    op.drop_table("scheduler_state")
    op.drop_table("scheduler_cleanup_configs")
    op.drop_index("ix_scheduler_executions_outcome", table_name="scheduler_executions")
    op.drop_index("ix_scheduler_executions_event_id", table_name="scheduler_executions")
    op.drop_index("ix_scheduler_executions_created_at", table_name="scheduler_executions")
    op.drop_table("scheduler_executions")
    op.drop_index("ix_scheduler_events_module_id", table_name="scheduler_events")
    op.drop_index("ix_scheduler_events_due", table_name="scheduler_events")
    op.drop_table("scheduler_events")


def _create_events() -> None:
    op.create_table(
        "scheduler_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("module_id", sa.String(length=100), nullable=True),
        sa.Column("function_name", sa.String(length=255), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("schedule_hash", sa.String(length=64), nullable=False),
        sa.Column("recurring", sa.Boolean(), nullable=False),
        sa.Column("interval_type", sa.String(length=20), nullable=True),
        sa.Column("interval_value", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        _utc("next_execution", nullable=True),
        _utc("last_execution", nullable=True),
        sa.Column("execution_count", sa.Integer(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("max_executions", sa.Integer(), nullable=True),
        sa.Column("config_revision", sa.String(length=64), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        _utc("lease_until", nullable=True),
        _utc("created_at", nullable=False),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_events"),
        sa.UniqueConstraint("name", name="uq_scheduler_events_name"),
    )
    op.create_index("ix_scheduler_events_due", "scheduler_events", ["status", "next_execution"])
    op.create_index("ix_scheduler_events_module_id", "scheduler_events", ["module_id"])


def _create_executions() -> None:
    op.create_table(
        "scheduler_executions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        _utc("scheduled_time", nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        _utc("started_at", nullable=True),
        _utc("finished_at", nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("runner_id", sa.String(length=200), nullable=True),
        sa.Column("config_revision", sa.String(length=64), nullable=True),
        _utc("lease_until", nullable=True),
        _utc("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["scheduler_events.id"],
            name="fk_scheduler_executions_event_id_scheduler_events",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_executions"),
        sa.UniqueConstraint(
            "event_id", "scheduled_time", "attempt", name="uq_scheduler_executions_run"
        ),
    )
    op.create_index("ix_scheduler_executions_created_at", "scheduler_executions", ["created_at"])
    op.create_index("ix_scheduler_executions_event_id", "scheduler_executions", ["event_id"])
    op.create_index("ix_scheduler_executions_outcome", "scheduler_executions", ["outcome"])


def _create_cleanup_configs() -> None:
    op.create_table(
        "scheduler_cleanup_configs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("directory", sa.Text(), nullable=False),
        sa.Column("pattern", sa.String(length=255), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.String(length=100), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config_revision", sa.String(length=64), nullable=True),
        _utc("last_run", nullable=True),
        sa.Column("last_report", sa.JSON(), nullable=True),
        _utc("created_at", nullable=False),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_cleanup_configs"),
        sa.UniqueConstraint("name", name="uq_scheduler_cleanup_configs_name"),
    )


def _create_state() -> None:
    op.create_table(
        "scheduler_state",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_scheduler_state"),
    )
