"""The hot statements on SQLite: the values SQLAlchemy would store and read, and inserts
of more rows than one statement may bind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, insert, select, update

from runner.store import hot
from runner.store.engine import create_engine
from runner.store.tables import UTCDateTime

T0 = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC)
things = Table(
    "things",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("n", Integer),
    Column("at", UTCDateTime()),
)


async def test_inserts_updates_and_reads_as_sqlalchemy_does(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hot, "MAX_VARIABLES", 5)  # two rows a statement
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(things.metadata.create_all)
        values = {things.c.n: bindparam("n"), things.c.at: bindparam("at", type_=UTCDateTime())}
        adding = hot.Hot(
            insert(things).values(values).returning(things.c.id, things.c.at), engine.dialect
        )
        bumping = hot.Hot(
            update(things).where(things.c.id == bindparam("b_id")).values(n=things.c.n + 10),
            engine.dialect,
        )
        reading = hot.Hot(select(things).where(things.c.at >= bindparam("since")), engine.dialect)
        rows = [{"n": i, "at": T0 + timedelta(hours=i)} for i in range(5)]

        def work(db: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            added = adding.insert(db, rows)
            bumping.many(db, [{"b_id": row.id} for row in added[:2]])
            return added, reading.rows(db, {"since": T0 + timedelta(hours=1)})

        async with engine.connect() as conn:
            added, read = await hot.in_transaction(conn, work)
        assert sorted(row.at for row in added) == [row["at"] for row in rows]
        assert [(row.n, row.at) for row in read] == [
            (11, T0 + timedelta(hours=1)),
            *((i, T0 + timedelta(hours=i)) for i in range(2, 5)),
        ]
        async with engine.connect() as conn:
            stored = (await conn.execute(select(things).order_by(things.c.id))).all()
        assert [(row.n, row.at) for row in stored] == [
            (10, T0),
            (11, T0 + timedelta(hours=1)),
            *((i, T0 + timedelta(hours=i)) for i in range(2, 5)),
        ]
    finally:
        await engine.dispose()


async def test_a_failed_transaction_writes_nothing(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(things.metadata.create_all)
        adding = hot.Hot(insert(things).values(n=bindparam("n")), engine.dialect)

        def fail(db: sqlite3.Connection) -> None:
            adding.many(db, [{"n": 1}])
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            async with engine.connect() as conn:
                await hot.in_transaction(conn, fail)
        async with engine.connect() as conn:
            assert (await conn.execute(select(things))).all() == []
    finally:
        await engine.dispose()


async def test_a_cancelled_caller_has_the_transaction_rolled_back_once_it_ended(
    sqlite_url: str,
) -> None:
    """The transaction runs on the driver's thread: a caller cancelled meanwhile (twice,
    here) returns only once it has ended, rolled back, so that what it claimed is not
    left to no one; whoever writes next finds the connection free."""
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(things.metadata.create_all)
        adding = hot.Hot(insert(things).values(n=bindparam("n")), engine.dialect)
        began, release = threading.Event(), threading.Event()

        def slow(db: sqlite3.Connection) -> None:
            adding.many(db, [{"n": 1}])
            began.set()
            release.wait(10)

        async def claim() -> None:
            async with engine.connect() as conn:
                await hot.in_transaction(conn, slow)

        task = asyncio.create_task(claim())
        await asyncio.to_thread(began.wait, 10)
        for _ in range(2):
            task.cancel()
            await asyncio.sleep(0.05)
            assert not task.done()  # still waiting for the transaction on the driver's thread
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with engine.connect() as conn:  # the same pooled connection, free again
            await hot.in_transaction(conn, lambda db: adding.many(db, [{"n": 2}]))
        async with engine.connect() as conn:
            assert (await conn.execute(select(things.c.n))).scalars().all() == [2]
    finally:
        await engine.dispose()
