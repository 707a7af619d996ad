"""Indexes that answer "what is due" without reading every event.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNABLE = ["status", "enabled", "paused"]


def upgrade() -> None:
    with op.batch_alter_table("scheduler_events") as batch:
        batch.drop_index("ix_scheduler_events_due")
        batch.drop_index("ix_scheduler_events_retry")
        batch.create_index("ix_scheduler_events_due", [*RUNNABLE, "next_execution"])
        batch.create_index("ix_scheduler_events_retry", [*RUNNABLE, "retry_at"])
        batch.create_index("ix_scheduler_events_triggered", ["triggered_at"])


def downgrade() -> None:
    with op.batch_alter_table("scheduler_events") as batch:
        batch.drop_index("ix_scheduler_events_triggered")
        batch.drop_index("ix_scheduler_events_retry")
        batch.drop_index("ix_scheduler_events_due")
        batch.create_index("ix_scheduler_events_due", ["status", "next_execution"])
        batch.create_index("ix_scheduler_events_retry", ["status", "retry_at"])
