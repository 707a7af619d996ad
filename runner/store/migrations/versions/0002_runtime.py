"""Runtime state for the runner: pending retries, manual triggers, execution trigger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_events") as batch:
        batch.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("retry_scheduled_time", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("retry_attempt", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_scheduler_events_retry", ["status", "retry_at"])
    with op.batch_alter_table("scheduler_executions") as batch:
        batch.add_column(
            sa.Column("trigger", sa.String(10), nullable=False, server_default="schedule")
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduler_executions") as batch:
        batch.drop_column("trigger")
    with op.batch_alter_table("scheduler_events") as batch:
        batch.drop_index("ix_scheduler_events_retry")
        for column in ("triggered_at", "retry_attempt", "retry_scheduled_time", "retry_at"):
            batch.drop_column(column)
