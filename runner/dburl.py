"""Database URLs without SQLAlchemy: the one definition of "which file does this SQLite URL
name".

The store opens SQLite files through SQLAlchemy; this module reads the same URLs the
same way (a test compares the two) without importing SQLAlchemy, which ``runner
validate`` must not pay for. Pure: no I/O except :func:`os.path.abspath`'s cwd.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote

MEMORY = ":memory:"


def backend(url: str) -> str:
    """The backend a URL names, lowercase, without its driver: ``sqlite+aiosqlite://x`` →
    ``sqlite``; ``""`` for text that is not a URL."""
    scheme, sep, _ = url.partition("://")
    return scheme.partition("+")[0].lower() if sep else ""


def sqlite_file(url: str) -> str | None:
    """The absolute path of the file an SQLite URL names; None for other databases and for
    in-memory ones.

    ``sqlite:///data/r.db?timeout=5`` → ``$PWD/data/r.db``; ``sqlite:////srv/r.db`` →
    ``/srv/r.db``; ``sqlite://`` and ``sqlite:///:memory:`` → None. Percent escapes are
    decoded, the query string is dropped, and an SQLite URI filename (``file:...`` with
    ``?uri=true``) names the file after ``file:``.
    """
    if backend(url) != "sqlite":
        return None
    rest = url.partition("://")[2]
    _host, slash, database = rest.partition("/")
    database, _, query = database.partition("?")
    database = unquote(database)
    if not slash or database in ("", MEMORY):
        return None
    if database.startswith("file:") and dict(parse_qsl(query)).get("uri") == "true":
        database = database.removeprefix("file:").partition("?")[0]
        if database.startswith("//"):  # file:///abs/path (an empty authority)
            database = database[2:]
    return os.path.abspath(database)
