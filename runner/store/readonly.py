"""An SQLite file's config state and declarations, read with the standard library alone.

``runner plan``, and ``runner apply`` of a config that is applied already, only read: the
schema's revision, the config state and every stored event and policy. Read here through
:mod:`sqlite3`, in one read transaction and as the store reads them, they need neither
SQLAlchemy nor the store (a fifth of a second of imports). Whatever is to be written goes
to the store's reconcile (:mod:`runner.store.reconcile`), which reads again under the
write lock.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.dburl import sqlite_file
from runner.plan import Plan, Stored
from runner.specs import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CONFIG_STATE = "config"
# The status of a config event that left the config: it never runs, is listed only when
# asked for, and keeps its history until retention; declared again, it comes back.
REMOVED = "removed"
BUSY_TIMEOUT = 5.0  # seconds a connection waits for a lock, here and in the store's

#: The config state before reconcile, and the stored events and policies by name.
Declared = tuple[dict[str, Any], dict[str, Stored], dict[str, Stored]]

# The stored declarations, their specs as JSON text: plain SQL that SQLite and PostgreSQL
# both read, so the store's reconcile reads them with the same statements.
EVENTS = (
    "SELECT name, source, CAST(spec AS TEXT), spec_hash, schedule_hash, status"
    " FROM scheduler_events"
)
CLEANUPS = "SELECT name, source, CAST(spec AS TEXT), spec_hash FROM scheduler_cleanup_configs"


def sqlite_text(value: datetime | None) -> str | None:
    """``value`` as an SQLite file holds an instant: naive UTC text, to the microsecond
    (what the store's ``UTCDateTime`` binds)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


def path_of(url: str) -> str | None:
    """The SQLite file ``url`` names, where this module can read it as the store would:
    None for other databases and for URLs with options (``?...``)."""
    return None if "?" in url else sqlite_file(url)


def connect(path: str) -> sqlite3.Connection | None:
    """A connection to the SQLite file at ``path`` (no transaction begun for it), if the
    file is there and its schema at the :func:`head` revision; else None (the store
    creates or migrates it)."""
    if not os.path.isfile(path):
        return None
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        if _revision(connection) == head():
            return connection
    except BaseException:
        connection.close()
        raise
    connection.close()
    return None


def read(path: str) -> Declared | None:
    """The config state and every stored declaration of the SQLite file at ``path``, as
    reconcile reads them; None where this cannot tell: no such file, or a schema that is
    not at the :func:`head` revision (the store migrates it first)."""
    connection = connect(path)
    if connection is None:
        return None
    try:
        connection.execute("BEGIN")  # one snapshot for all three reads
        found = connection.execute(
            'SELECT value FROM scheduler_state WHERE "key" = ?', (CONFIG_STATE,)
        ).fetchone()
        value = json.loads(found[0]) if found and found[0] is not None else None
        events, cleanups = stored(connection.execute(EVENTS), connection.execute(CLEANUPS))
        connection.execute("COMMIT")
        return (dict(value) if value else {}), events, cleanups
    finally:
        connection.close()


def stored(
    event_rows: Iterable[Sequence[Any]], cleanup_rows: Iterable[Sequence[Any]]
) -> tuple[dict[str, Stored], dict[str, Stored]]:
    """The stored events and policies by name, from the rows of :data:`EVENTS` and
    :data:`CLEANUPS`."""
    events = {
        name: Stored(name, source, JsonText(spec), spec_hash, schedule_hash, status == REMOVED)
        for name, source, spec, spec_hash, schedule_hash, status in event_rows
    }
    cleanups = {
        name: Stored(name, source, JsonText(spec), spec_hash)
        for name, source, spec, spec_hash in cleanup_rows
    }
    return events, cleanups


def _revision(connection: sqlite3.Connection) -> str | None:
    try:
        found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: a database runner never opened
        return None
    return None if found is None else str(found[0])


def writes_nothing(config: Config, plan: Plan, previous: Mapping[str, Any]) -> bool:
    """Whether reconciling ``config`` writes nothing: its plan has conflicts or refuses an
    empty config, or it is empty and the same revision is applied (without an error
    since)."""
    if plan.conflicts or plan.refused_empty:
        return True
    same = previous.get("revision") == config.revision and not previous.get("error")
    return plan.empty and same


class JsonText(Mapping[str, Any]):
    """A JSON object as the database returned its text, decoded when first read: a
    re-apply compares hashes, and decoding thousands of specs would be most of its time."""

    def __init__(self, text: str) -> None:
        self._text = text

    @functools.cached_property
    def _data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._text)
        return data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@functools.cache
def head() -> str:
    """The newest migration's revision, read from the migration files' ``revision`` and
    ``down_revision`` lines (the one revision no other names as its predecessor)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text_ = script.read_text()
        revisions |= set(_REVISION.findall(text_))
        parents |= set(_DOWN_REVISION.findall(text_))
    (newest,) = revisions - parents
    return newest


_REVISION = re.compile(r'^revision(?:: str)? = "([^"]+)"', re.M)
_DOWN_REVISION = re.compile(r'^down_revision(?:: str \| None)? = "([^"]+)"', re.M)
