"""The one reading of "which file does this SQLite URL name" (issue 9)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from runner import dburl
from runner.store.engine import async_url

CASES = [
    ("sqlite:///data/r.db?timeout=5", "data/r.db"),  # relative, a query string
    ("sqlite:///runner.db", "runner.db"),
    ("sqlite:////srv/runner/r.db", "/srv/runner/r.db"),  # absolute: four slashes
    ("sqlite+aiosqlite:///data/r.db", "data/r.db"),  # a driver named
    ("SQLite:///r.db", "r.db"),
    ("sqlite:///my%20data/r.db", "my data/r.db"),  # percent escapes
    ("sqlite:///a#b.db", "a#b.db"),
]
NOT_A_FILE = [
    "sqlite://",
    "sqlite:///:memory:",
    "sqlite+aiosqlite:///:memory:?cache=shared",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql+asyncpg://u@h/sqlite.db",
    "runner.db",
]


@pytest.mark.parametrize(("url", "path"), CASES)
def test_the_file_an_sqlite_url_names(
    url: str, path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert dburl.sqlite_file(url) == os.path.join(tmp_path, path)


@pytest.mark.parametrize(("url", "path"), CASES)
def test_it_is_the_file_sqlalchemy_opens(url: str, path: str) -> None:
    """The store opens what SQLAlchemy parses; cleanup protects what this module parses."""
    assert dburl.sqlite_file(url) == os.path.abspath(make_url(async_url(url)).database or "")


@pytest.mark.parametrize("url", NOT_A_FILE)
def test_memory_and_other_databases_name_no_file(url: str) -> None:
    assert dburl.sqlite_file(url) is None


def test_an_sqlite_uri_filename_names_the_file_after_file() -> None:
    assert dburl.sqlite_file("sqlite:///file:data/r.db?mode=rwc&uri=true") == os.path.abspath(
        "data/r.db"
    )
    assert dburl.sqlite_file("sqlite:///file:///srv/r.db?uri=true") == "/srv/r.db"


@pytest.mark.parametrize(
    ("url", "backend"),
    [("sqlite+aiosqlite:///x", "sqlite"), ("PostgreSQL://h/d", "postgresql"), ("r.db", "")],
)
def test_backend(url: str, backend: str) -> None:
    assert dburl.backend(url) == backend
