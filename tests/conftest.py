"""Shared fixtures: database URLs for SQLite and PostgreSQL, and a migrated engine.

PostgreSQL tests run against the server named by ``RUNNER_TEST_PG_URL`` (for example
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a database of its own,
dropped afterwards. Without that variable they are skipped, except under CI, where a
missing server is a failure: skipping there would hide a broken backend.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from runner.store.engine import create_engine, migrate

PG_URL_ENV = "RUNNER_TEST_PG_URL"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL for a SQLite file (not yet created) in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'runner.db'}"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A URL for a fresh, empty PostgreSQL database, dropped (with FORCE) after the test."""
    admin = _pg_admin_url()
    name = f"runner_test_{secrets.token_hex(6)}"
    await _pg_admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await _pg_admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL, once per backend: store contract tests run on both."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on :func:`db_url`, disposed after the test."""
    engine = create_engine(db_url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


def _pg_admin_url() -> URL:
    """The server from the environment; fails under CI and skips elsewhere when unset."""
    raw = os.environ.get(PG_URL_ENV)
    if not raw:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_URL_ENV} not set under CI: PostgreSQL tests need a server")
        pytest.skip(f"{PG_URL_ENV} not set: PostgreSQL tests need a server")
    return make_url(raw)


async def _pg_admin_execute(admin: URL, sql: str) -> None:
    """Run one statement on the admin database with asyncpg (no SQLAlchemy engine)."""
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
