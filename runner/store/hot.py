"""The hot path's statements on SQLite, sent through the driver itself.

A burst claims and finishes thousands of runs a second, each a row in several
executemany statements. SQLAlchemy builds a parameter dict per row and runs its type
processors through several layers, and every statement is a few round trips to the
driver's thread. Here each statement is compiled once, by SQLAlchemy, for the engine's
dialect; its rows are bound as tuples through the same type processors SQLAlchemy would
use (the same stored values). A whole transaction, its statements and the Python between
them, runs as one call on the driver's thread (:func:`in_transaction`): the claim and
the finish touch SQLAlchemy only to take a pooled connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

from runner.store.tables import UTCDateTime

T = TypeVar("T")
# SQLite's default wal_autocheckpoint (pages), which the engine leaves as it is and a hot
# transaction turns off for its commit (see in_transaction).
AUTOCHECKPOINT = 1000
Processor = Callable[[Any], Any] | None
# The most host parameters one statement may have: SQLite's default since 3.32, before it 999.
MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class Hot:
    """One statement compiled for ``dialect``, run with :meth:`many` (executemany),
    :meth:`rows` (one statement, its rows) or :meth:`insert` (rows, RETURNING)."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        # Lists (``IN``, ``NOT IN``) expanded to one placeholder per element, and the
        # statement's own literals as defaults; the values to be given are None here.
        given = {bind.key: None for bind in compiled.binds.values() if bind.required}
        expanded = compiled.construct_expanded_state(given)
        assert expanded.positiontup is not None, "the dialect binds by position"
        self.sql = expanded.statement
        binds = compiled.binds
        names = expanded.positiontup
        self._names = names
        defaults = [expanded.parameters.get(name) for name in names]
        processors = [_bind(_bind_type(binds, name), dialect) for name in names]
        self.bound = _binder(names, defaults, processors)
        columns = _returned(statement)
        # Rows with the columns as attributes, as SQLAlchemy's (unnamed ones: _0, _1, ...).
        row: Any = namedtuple("Row", [name for name, _ in columns], rename=True)  # type: ignore[misc]
        self._row = _row_maker(row, [_result(type_, dialect) for _, type_ in columns])

    def _rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        make = self._row
        return [make(row) for row in raw]

    def many(self, db: sqlite3.Connection, values: Sequence[dict[str, Any]]) -> None:
        """Run the statement once per parameter set: one executemany."""
        if values:
            db.executemany(self.sql, [self.bound(v) for v in values])

    def rows(self, db: sqlite3.Connection, values: dict[str, Any]) -> list[Any]:
        """Run the statement once; its rows, converted as SQLAlchemy would, with their
        columns as attributes."""
        return self._rows(db.execute(self.sql, self.bound(values)).fetchall())

    def insert(self, db: sqlite3.Connection, values: Sequence[dict[str, Any]]) -> list[Any]:
        """An INSERT ... VALUES (...) RETURNING of one row per parameter set, sent as
        multi-row INSERTs (executemany returns no rows); the rows RETURNING gives."""
        head, _, tail = self.sql.partition(" VALUES ")
        group, _, returning = tail.partition(" RETURNING ")
        size = max(1, MAX_VARIABLES // max(1, len(self._names)))
        found: list[Any] = []
        for start in range(0, len(values), size):
            chunk = values[start : start + size]
            sql = f"{head} VALUES {', '.join([group] * len(chunk))} RETURNING {returning}"
            flat = [value for v in chunk for value in self.bound(v)]
            found += self._rows(db.execute(sql, flat).fetchall())
        return found


async def in_transaction(conn: AsyncConnection, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work(db)`` in a write transaction (``BEGIN IMMEDIATE``: the write lock at once;
    committed when it returns, rolled back when it raises) on the sqlite3 connection under
    ``conn``, which must not be in a transaction of SQLAlchemy's.

    It runs on the driver's thread as one call, the way aiosqlite runs each of its own
    calls there (its ``_execute``): a claim's ten statements cost one round trip through
    the event loop, not ten, and the loop goes on with other work (the runs the last
    claim started) while SQLite writes. A caller cancelled meanwhile has the transaction
    rolled back unless it is already committing; either way this waits for its end on
    that thread before raising, so the write lock is not given up with it open.

    The commit leaves the WAL as it is, where SQLite's own would copy it into the database
    file once it holds 1,000 pages (its wal_autocheckpoint), and the claim would wait for
    that: the caller checkpoints beside it (:func:`checkpoint`).
    """
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # an aiosqlite.Connection
    db: sqlite3.Connection = driver._conn
    abandoned = threading.Event()
    call = asyncio.ensure_future(driver._execute(_transaction, db, work, abandoned))
    try:
        return await asyncio.shield(call)
    except asyncio.CancelledError:
        abandoned.set()
        while not call.done():  # however often the caller is cancelled meanwhile
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(call)
        raise
    finally:
        if call.done() and not call.cancelled() and call.exception() and db.in_transaction:
            await conn.invalidate()  # it could not roll back: not to be reused


def _transaction(
    db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T], abandoned: threading.Event
) -> T:
    db.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            if abandoned.is_set():  # its caller is gone: no one would start what it claimed
                raise _Abandoned
            db.commit()
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # the caller sees that it is still open
                db.rollback()
            raise
    finally:
        db.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT}")  # as it came from the pool
    return result


class _Abandoned(Exception):
    """The caller of a transaction was cancelled before it committed."""


async def checkpoint(conn: AsyncConnection) -> tuple[int, int]:
    """Copy what the WAL holds into the database file, on the driver's thread of ``conn``
    (outside any transaction): a PASSIVE checkpoint, which writers do not wait for.
    Returns how many pages the WAL holds (since it last started over, which the next
    writer does once all of them have been copied and no reader needs them) and how many
    of them have been copied."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    ((_busy, pages, copied),) = await driver.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
    return int(pages), int(copied)


def _binder(
    names: Sequence[str], defaults: Sequence[Any], processors: Sequence[Processor]
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function of a statement's values (by bind name; the statement's own literals
    where absent) that returns the driver's parameters, in order, each through its type's
    processor. It is written out as one expression for the statement, the way
    ``namedtuple`` writes its methods: a burst binds tens of thousands of rows a second,
    and a loop over each row's parameters cost three times as much. None is bound as its
    processor binds it, worked out once (JSON's ``'null'``, NULL for most types)."""
    namespace: dict[str, Any] = {}
    parts = []
    for i, (name, default, process) in enumerate(zip(names, defaults, processors, strict=True)):
        namespace |= {f"d{i}": default, f"p{i}": process}
        value = f"v.get({name!r}, d{i})"
        if process is None:
            parts.append(f"{value}, ")
        elif (null := _null(process)) is not _FAILS:
            namespace[f"n{i}"] = null
            parts.append(f"n{i} if (x := {value}) is None else p{i}(x), ")
        else:
            parts.append(f"p{i}({value}), ")
    exec(f"def bound(v):\n    return ({''.join(parts)})", namespace)
    return namespace["bound"]  # type: ignore[no-any-return]


def _row_maker(row: type[Any], processors: Sequence[Processor]) -> Callable[[Any], Any]:
    """A function of a driver's row that returns it as ``row`` (a namedtuple), each value
    through its type's processor, written out as :func:`_binder`'s functions are. A NULL
    skips a processor that would turn it into None anyway (most of a claim's times)."""
    namespace: dict[str, Any] = {"new": tuple.__new__, "Row": row}
    parts = []
    for i, process in enumerate(processors):
        namespace[f"p{i}"] = process
        if process is None:
            parts.append(f"r[{i}], ")
        elif _null(process) is None:
            parts.append(f"None if (x := r[{i}]) is None else p{i}(x), ")
        else:
            parts.append(f"p{i}(r[{i}]), ")
    exec(f"def make(r):\n    return new(Row, ({''.join(parts)}))", namespace)
    return namespace["make"]  # type: ignore[no-any-return]


_FAILS = object()


def _null(process: Callable[[Any], Any]) -> Any:
    """What ``process`` makes of None; :data:`_FAILS` if it raises."""
    try:
        return process(None)
    except Exception:
        return _FAILS


def _returned(statement: ClauseElement) -> list[tuple[str, TypeEngine[Any]]]:
    """The names and types of the columns ``statement`` returns (none for a plain DML)."""
    columns = getattr(statement, "exported_columns", ())
    return [(str(c.key), c.type) for c in columns]


def _bind_type(binds: dict[str, Any], name: str) -> TypeEngine[Any]:
    """The type of bind ``name``, or of the list it is an element of (``status_2_1``)."""
    bind = binds[name] if name in binds else binds[name.rpartition("_")[0]]
    return bind.type  # type: ignore[no-any-return]


def _bind(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is not None and isinstance(type_, UTCDateTime):
        # A batch binds the same instants again and again (its ``now``, a shared
        # scheduled time); their text is made once.
        return functools.lru_cache(maxsize=1024)(process)
    return process


def _result(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    return type_.dialect_impl(dialect).result_processor(dialect, None)
