"""Shared fixtures: database URLs for SQLite and PostgreSQL, and a migrated engine.

PostgreSQL tests run against the server named by ``RUNNER_TEST_PG_URL`` (for example
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a database of its own,
dropped afterwards. Without that variable they are skipped, except under CI, where a
missing server is a failure: skipping there would hide a broken backend.

Migrating takes a while, so each backend is migrated once per session (per xdist worker)
into a template, and :func:`db_url` hands every test a copy: for SQLite a copy of the file,
for PostgreSQL ``CREATE DATABASE ... TEMPLATE``. Tests of migration itself take
:func:`empty_db_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
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
    async with _pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to the latest revision, made once per session."""
    path = tmp_path_factory.mktemp("template") / "runner.db"
    asyncio.run(_migrated(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated to the latest revision, once per session."""
    admin = _pg_admin_url()
    name = f"runner_template_{secrets.token_hex(6)}"
    asyncio.run(_pg_admin_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(_migrated(_render(admin.set(database=name))))
        yield name
    finally:
        asyncio.run(_pg_admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def migrated_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A URL for a migrated SQLite file of the test's own (a copy of the template)."""
    path = tmp_path / "runner.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def migrated_pg_url(pg_template: str) -> AsyncIterator[str]:
    """A URL for a migrated PostgreSQL database of the test's own, dropped afterwards."""
    async with _pg_database(template=pg_template) as url:
        yield url


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database of the test's own, once per backend: store contract tests run
    on both."""
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """A database with no tables yet, once per backend: for tests of migration itself."""
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


async def _migrated(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _pg_database(template: str | None = None) -> AsyncIterator[str]:
    """A database of its own (a copy of ``template``, if given), dropped afterwards."""
    admin = _pg_admin_url()
    name = f"runner_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    await _pg_admin_execute(admin, f'CREATE DATABASE "{name}"{copy}')
    try:
        yield _render(admin.set(database=name))
    finally:
        await _pg_admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


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
