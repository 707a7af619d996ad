"""A new SQLite database gets the migrated schema at once, from a record of it.

Running every Alembic migration on a new file costs Alembic's import and a rebuilt table
per batch migration, a third of a second or more of a first ``runner apply``. The schema
the migrations end at is recorded in ``sqlite_head.json``: the statements of
``sqlite_master`` in the order SQLite keeps them, and the revision they are at. A database
without a single table gets those statements and that revision in ``alembic_version``,
which is what Alembic would have left, byte for byte (a test compares the two).

The record serves only the revision it was made at: after a new migration, new files go
through Alembic until the record is made again (``python -m runner.store.fresh``; a test
fails until then). PostgreSQL always migrates through Alembic.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine

RECORD = Path(__file__).resolve().parent / "sqlite_head.json"


@functools.cache
def record() -> dict[str, Any]:
    """The recorded schema: ``revision`` and ``statements`` (SQL, in order)."""
    data: dict[str, Any] = json.loads(RECORD.read_text("utf-8"))
    return data


def create(connection: Connection, revision: str) -> bool:
    """Give an SQLite database that has no tables the recorded schema at ``revision``;
    False, doing nothing, when the database is not SQLite, not empty, or the record is
    of another revision (then Alembic migrates it)."""
    if connection.dialect.name != "sqlite" or record()["revision"] != revision:
        return False
    if connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
        return False
    for statement in record()["statements"]:
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))
    return True


def schema(connection: Connection) -> list[tuple[str, str, str, str | None]]:
    """What ``sqlite_master`` holds (type, name, table, SQL), in SQLite's order."""
    rows = connection.exec_driver_sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def migrated_schema() -> tuple[str, list[tuple[str, str, str, str | None]]]:
    """The head revision and the schema Alembic's migrations give a new SQLite file."""
    from alembic import command

    from runner.store.engine import alembic_config, head

    with tempfile.TemporaryDirectory() as directory:
        engine = create_engine(f"sqlite:///{Path(directory) / 'migrated.db'}")
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), "head")
                return head(), schema(connection)
        finally:
            engine.dispose()


def main() -> None:
    """Write the record of the current head (after adding a migration)."""
    revision, rows = migrated_schema()
    statements = [sql for _type, _name, _table, sql in rows if sql is not None]
    text = json.dumps({"revision": revision, "statements": statements}, indent=2)
    RECORD.write_text(text + "\n", "utf-8")
    print(f"{RECORD}: {len(statements)} statements at revision {revision}", file=sys.stderr)


if __name__ == "__main__":
    main()
