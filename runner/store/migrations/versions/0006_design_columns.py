"""The module design's columns: events' last_error; executions' start_time and end_time
(renamed from started_at / finished_at, data kept) and trace_session_id; cleanup configs'
retention_days, max_files and max_size_mb (filled from each policy's spec).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from runner import schedules

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Runs that ended: their error (None on success) is what last_error shows.
_LAST_ERROR = """
UPDATE scheduler_events SET last_error = (
    SELECT x.error FROM scheduler_executions x
    WHERE x.event_id = scheduler_events.id
      AND x.outcome IN ('succeeded', 'failed', 'timed_out', 'interrupted')
    ORDER BY x.end_time DESC, x.id DESC
    LIMIT 1
)
"""


def upgrade() -> None:
    with op.batch_alter_table("scheduler_executions") as batch:
        batch.alter_column("started_at", new_column_name="start_time")
        batch.alter_column("finished_at", new_column_name="end_time")
        batch.add_column(sa.Column("trace_session_id", sa.String(64), nullable=True))
    with op.batch_alter_table("scheduler_events") as batch:
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    op.execute(_LAST_ERROR)
    _name_interval_units()
    with op.batch_alter_table("scheduler_cleanup_configs") as batch:
        batch.add_column(sa.Column("retention_days", sa.Float(), nullable=True))
        batch.add_column(sa.Column("max_files", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_size_mb", sa.Float(), nullable=True))
    _fill_cleanup_limits()


def _name_interval_units() -> None:
    """``interval_type`` ``every`` with ``15m`` or ``minutes=15`` becomes the design's
    ``minutes`` with ``15``."""
    events = sa.table(
        "scheduler_events",
        sa.column("id", sa.Integer()),
        sa.column("interval_type", sa.String()),
        sa.column("interval_value", sa.String()),
    )
    connection = op.get_bind()
    query = sa.select(events.c.id, events.c.interval_value).where(events.c.interval_type == "every")
    for row in connection.execute(query).all():
        unit_count = _unit_and_count(row.interval_value or "")
        if unit_count is not None:
            values = {"interval_type": unit_count[0], "interval_value": unit_count[1]}
            connection.execute(sa.update(events).where(events.c.id == row.id).values(values))


def _unit_and_count(value: str) -> tuple[str, str] | None:
    """What 0001-0005 wrote (``15m``, or ``minutes=15`` for a mapping) as (unit, count)."""
    unit, equals, count = value.partition("=")
    try:
        every = {unit: int(count)} if equals else value
        amount, name = schedules.parse_every(every)
    except ValueError:
        return None
    return name, str(amount)


def _fill_cleanup_limits() -> None:
    """Copy each policy's limits from its JSON spec (read in Python: JSON functions differ
    between SQLite and PostgreSQL)."""
    policies = sa.table(
        "scheduler_cleanup_configs",
        sa.column("id", sa.Integer()),
        sa.column("spec", sa.JSON()),
        sa.column("retention_days", sa.Float()),
        sa.column("max_files", sa.Integer()),
        sa.column("max_size_mb", sa.Float()),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(policies.c.id, policies.c.spec)).all():
        spec = row.spec or {}
        limits = {k: spec.get(k) for k in ("retention_days", "max_files", "max_size_mb")}
        connection.execute(sa.update(policies).where(policies.c.id == row.id).values(limits))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_cleanup_configs") as batch:
        batch.drop_column("max_size_mb")
        batch.drop_column("max_files")
        batch.drop_column("retention_days")
    with op.batch_alter_table("scheduler_events") as batch:
        batch.drop_column("last_error")
    with op.batch_alter_table("scheduler_executions") as batch:
        batch.drop_column("trace_session_id")
        batch.alter_column("end_time", new_column_name="finished_at")
        batch.alter_column("start_time", new_column_name="started_at")
