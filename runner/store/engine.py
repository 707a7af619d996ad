"""Database engines, transactions and schema migration.

Two backends are supported: SQLite (through aiosqlite, the default) and PostgreSQL
(through asyncpg). Everything that touches the database goes through
:func:`write_transaction` or :func:`read_transaction`, so that SQLite takes its write lock
at the start of a writing transaction (``BEGIN IMMEDIATE``) and waits for it up to the
busy timeout, instead of failing with "database is locked" half-way through.

A command that only reconciles (``runner apply``, ``runner plan``) opens an SQLite file
synchronously instead (:func:`open_sqlite`, :func:`sync_transaction`), with the same
connection set-up and transactions: no event loop, no driver thread, and no import of
SQLAlchemy's asyncio extension, which brings the ORM with it.

Do not use the ``isolation_level`` execution option on SQLite engines made here: the
driver's own transaction handling is switched off and SQLAlchemy emits ``BEGIN``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from runner.errors import StoreError
from runner.store import fresh
from runner.store.readonly import BUSY_TIMEOUT, MIGRATIONS_DIR
from runner.store.readonly import head as head  # the revision migrate() ends at

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

#: How long a SQLite connection waits for a lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = round(BUSY_TIMEOUT * 1000)
SQLITE_CACHE_KIB = 32768  # the most each connection's page cache holds (32 MiB)

#: Key of the PostgreSQL advisory lock that serialises concurrent migrations.
MIGRATION_LOCK_KEY = 0x72756E6E6572  # "runner"


# Execution option read by the SQLite "begin" listener: True makes it BEGIN IMMEDIATE.
_WRITE_OPTION = "runner_write"

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_BACKEND_ALIASES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}


def async_url(url: str) -> str:
    """The async SQLAlchemy form of a database URL.

    ``sqlite://...`` becomes ``sqlite+aiosqlite://...`` and ``postgresql://...`` or
    ``postgres://...`` becomes ``postgresql+asyncpg://...``; the rest of the URL is kept
    byte for byte. A URL that already names a driver (``backend+driver://``) is kept,
    except that the ``postgres`` alias is spelled ``postgresql``.

    Raises :class:`StoreError` for anything that is not a SQLite or PostgreSQL URL.
    """
    scheme, sep, rest = url.partition("://")
    backend, plus, driver = scheme.partition("+")
    canonical = _BACKEND_ALIASES.get(backend.lower()) if sep else None
    if canonical is None or (plus and not driver):
        raise StoreError(
            f"unsupported database URL {_redacted(url)!r}: "
            "expected sqlite:///path or postgresql://user@host/database"
        )
    new_scheme = f"{canonical}+{driver}" if plus else _ASYNC_DRIVERS[canonical]
    return f"{new_scheme}://{rest}"


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url`` (any form :func:`async_url` accepts).

    SQLite connections get WAL journaling, a busy timeout of
    :data:`SQLITE_BUSY_TIMEOUT_MS`, enforced foreign keys and ``synchronous=NORMAL``, and
    their transactions are begun by SQLAlchemy (see :func:`write_transaction`). A SQLite
    file whose directory does not exist is refused rather than created. PostgreSQL
    connections are pinged when taken from the pool.

    Raises :class:`StoreError` for an unusable URL. No connection is opened here.
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    full_url = async_url(url)
    try:
        parsed = make_url(full_url)
        if parsed.get_backend_name() == "sqlite":
            _check_sqlite_directory(parsed.database, dict(parsed.query))
            # Every transaction here ends in a commit or a rollback (write_transaction,
            # read_transaction), so the pool's rollback on return is a wasted round trip.
            engine = create_async_engine(full_url, pool_reset_on_return=None)
            _install_sqlite_listeners(engine.sync_engine)
            return engine
        return create_async_engine(full_url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot create an engine for {_redacted(url)!r}: {exc}") from exc


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that may write; committed on normal exit.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``: the write lock is taken
    (waiting up to the busy timeout) before the first statement runs. On PostgreSQL it is
    an ordinary transaction. Any exception rolls it back and propagates unchanged.
    """
    async with engine.connect() as conn:
        await conn.execution_options(**{_WRITE_OPTION: True})
        async with conn.begin():
            yield conn


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction meant for reading; committed on normal exit.

    On SQLite this is a deferred ``BEGIN``, which takes no lock until the first read and
    gives a consistent snapshot from then on. Writing in it is not prevented, but on
    SQLite a write may fail with "database is locked" without waiting: use
    :func:`write_transaction` for anything that writes.
    """
    async with engine.connect() as conn, conn.begin():
        yield conn


def open_sqlite(url: str) -> Engine | None:
    """A synchronous engine on the SQLite database ``url`` names, migrated to the latest
    revision (as :func:`migrate` does); None when ``url`` is not SQLite (PostgreSQL's
    driver here, asyncpg, is async only). Close it with ``dispose()``.

    Raises :class:`StoreError` for an unusable URL or a failed migration."""
    full_url = async_url(url)
    try:
        parsed = make_url(full_url)
    except ArgumentError as exc:
        raise StoreError(f"cannot create an engine for {_redacted(url)!r}: {exc}") from exc
    if parsed.get_backend_name() != "sqlite":
        return None
    _check_sqlite_directory(parsed.database, dict(parsed.query))
    from sqlalchemy import create_engine as create_sync_engine

    # The standard library's driver, whatever driver the URL names (aiosqlite is async).
    engine = create_sync_engine(parsed.set(drivername="sqlite"), pool_reset_on_return=None)
    _install_sqlite_listeners(engine)
    try:
        with _sync_write(engine) as conn:
            _upgrade_to_head(conn)
    except (SQLAlchemyError, OSError) as exc:
        engine.dispose()
        raise StoreError(f"database migration failed: {exc}") from exc
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def sync_transaction(engine: Engine, write: bool = True) -> Iterator[Connection]:
    """A connection of a synchronous SQLite engine (:func:`open_sqlite`) inside a
    transaction, as :func:`write_transaction` (``BEGIN IMMEDIATE``) or, without
    ``write``, :func:`read_transaction` gives one; committed on normal exit. Driver
    errors become :class:`StoreError`."""
    try:
        with _sync_write(engine, write) as conn:
            yield conn
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database {'write' if write else 'read'} failed: {exc}") from exc


@contextmanager
def _sync_write(engine: Engine, write: bool = True) -> Iterator[Connection]:
    with engine.connect() as conn:
        marked = conn.execution_options(**{_WRITE_OPTION: write})
        with marked.begin():
            yield marked


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database schema to the latest revision. Idempotent.

    Safe to call from several processes at once: the migration runs in one write
    transaction which, on PostgreSQL, first takes a transaction-level advisory lock and,
    on SQLite, holds the database write lock. Whoever comes second waits and then finds
    nothing to do.

    Raises :class:`StoreError` if the database cannot be reached or migrated (for
    instance when it carries a revision this version of runner does not know).
    """
    try:
        async with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            await conn.run_sync(_upgrade_to_head)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database migration failed: {exc}") from exc


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for runner's migrations, built without an ini file.

    ``connection``, if given, is the connection the migration environment runs on.
    """
    from alembic.config import Config

    config = Config(attributes={"connection": connection})
    # The value goes through ConfigParser interpolation, so "%" must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _upgrade_to_head(connection: Connection) -> None:
    """Upgrade with Alembic, imported only when the schema is not at :func:`head` already
    (the usual start) and the database is not a new SQLite file (which gets the recorded
    schema, :mod:`runner.store.fresh`): that saves its import time and memory."""
    current = _current(connection)
    if current == head():
        return
    if current is None and fresh.create(connection, head()):
        return
    from alembic import command
    from alembic.util import CommandError

    try:
        command.upgrade(alembic_config(connection), "head")
    except CommandError as exc:
        raise StoreError(f"database migration failed: {exc}") from exc


def _current(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if version is None else str(version)


def _check_sqlite_directory(database: str | None, query: dict[str, Any]) -> None:
    """Refuse a SQLite file in a directory that does not exist (memory and URIs pass)."""
    if not database or database == ":memory:" or str(query.get("uri", "")).lower() == "true":
        return
    directory = Path(database).expanduser().parent
    if not directory.is_dir():
        raise StoreError(
            f"cannot open SQLite database {database!r}: directory {str(directory)!r} does not exist"
        )


def _install_sqlite_listeners(engine: Engine) -> None:
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)


def _on_sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Set up a new SQLite connection; SQLAlchemy, not the driver, will emit BEGIN."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # A page cache that holds a busy database (SQLite's default is 2 MiB): a burst
        # updates thousands of event rows and their indexes, and re-reading evicted pages
        # from the WAL cost more than the updates. It grows only as pages are used.
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``. Two processes opening a new database at once may
    both try to switch; the loser gets "database is locked" without the busy handler's
    wait, so it waits here instead (a no-op once the file is in WAL mode)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _on_sqlite_begin(conn: Connection) -> None:
    """Begin a SQLite transaction: IMMEDIATE (write lock now) if marked as writing."""
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _redacted(url: str) -> str:
    """``url`` with any password masked, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
