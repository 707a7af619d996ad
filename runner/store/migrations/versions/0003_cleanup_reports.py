"""Housekeeping reports: one row per policy per run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_cleanup_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("directory", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("scanned", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("would_delete", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("runner_id", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_cleanup_reports"),
    )
    op.create_index("ix_scheduler_cleanup_reports_policy", "scheduler_cleanup_reports", ["policy"])
    op.create_index(
        "ix_scheduler_cleanup_reports_started_at", "scheduler_cleanup_reports", ["started_at"]
    )


def downgrade() -> None:
    op.drop_table("scheduler_cleanup_reports")
