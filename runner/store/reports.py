"""``runner cleanup`` on an SQLite file, with the standard library alone.

A cleanup reads the policies registered through the library or the API and writes a
report per policy. On a file at the head revision (:func:`readonly.connect`) both are
done here through :mod:`sqlite3`, writing the rows the store writes
(:meth:`~runner.store.sql.Store.save_cleanup_reports`), so the command needs neither
SQLAlchemy nor the store: a quarter of a second of imports, a third of what cleaning
100,000 files takes. Other databases, and a file to create or migrate, go through the
store.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from runner.errors import StoreError
from runner.results import CleanupReport
from runner.specs import CleanupSpec
from runner.store.readonly import sqlite_text

USER_POLICIES = (
    "SELECT CAST(spec AS TEXT) FROM scheduler_cleanup_configs WHERE source = 'user'"
    " ORDER BY priority, name"
)
_INSERT = (
    "INSERT INTO scheduler_cleanup_reports (policy, directory, dry_run, scanned, matched,"
    " deleted, bytes_freed, errors, would_delete, started_at, duration, runner_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LAST_RUN = (
    "UPDATE scheduler_cleanup_configs SET last_run = ?, last_report = ?, updated_at = ?"
    " WHERE name = ?"
)


def user_policies(db: sqlite3.Connection) -> list[CleanupSpec]:
    """The policies registered through the library or the API, by priority then name."""
    try:
        found = db.execute(USER_POLICIES).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"database read failed: {exc}") from exc
    return [CleanupSpec.from_json(json.loads(spec)) for (spec,) in found]


def report_row(report: CleanupReport, runner_id: str) -> dict[str, Any]:
    """The columns of ``report``'s row (the store's too)."""
    return dataclasses.asdict(report) | {"runner_id": runner_id}


def last_report(row: dict[str, Any]) -> dict[str, Any]:
    """What a policy keeps of its last report (the store's too): the row without the
    files it would delete, as JSON values."""
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in row.items()
        if k not in ("would_delete", "policy")
    }


def save(
    db: sqlite3.Connection, reports: Sequence[CleanupReport], runner_id: str, now: datetime
) -> None:
    """Store each report and remember it as its policy's last run, in one transaction."""
    if not reports:
        return
    try:
        _save(db, reports, runner_id, now)
    except sqlite3.Error as exc:
        raise StoreError(f"database write failed: {exc}") from exc


def _save(
    db: sqlite3.Connection, reports: Sequence[CleanupReport], runner_id: str, now: datetime
) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        for report in reports:
            row = report_row(report, runner_id)
            db.execute(
                _INSERT,
                (
                    *(row[k] for k in ("policy", "directory")),
                    int(row["dry_run"]),
                    *(row[k] for k in ("scanned", "matched", "deleted", "bytes_freed")),
                    json.dumps(row["errors"]),
                    json.dumps(row["would_delete"]),
                    sqlite_text(row["started_at"]),
                    row["duration"],
                    runner_id,
                ),
            )
            summary = json.dumps(last_report(row))
            db.execute(_LAST_RUN, (sqlite_text(now), summary, sqlite_text(now), report.policy))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
