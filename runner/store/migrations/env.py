"""Alembic environment for runner's schema.

Migrations run only online, on the connection that :func:`runner.store.engine.migrate`
passes in ``config.attributes["connection"]``, inside the transaction it has begun (and
locked); Alembic leaves that transaction alone. There is no ini file and no URL here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from runner.store.tables import metadata

target_metadata = metadata


def run_migrations_online(connection: Connection) -> None:
    """Run the pending migrations on ``connection``."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _given_connection() -> Connection:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "runner's migrations run through runner.store.engine.migrate(), "
            "which passes a connection; offline (--sql) mode is not supported"
        )
    return connection


if context.is_offline_mode():
    raise RuntimeError("runner's migrations do not support offline (--sql) mode")
run_migrations_online(_given_connection())
