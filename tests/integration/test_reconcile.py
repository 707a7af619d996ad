"""The reconcile contract (config → database) against the real store, on both backends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Executable, Table, func, insert, select, text, update

from runner import config as configs
from runner import reconciler
from runner.dburl import sqlite_file
from runner.errors import Conflict
from runner.plan import Plan
from runner.specs import CleanupSpec, Config, EventSpec, FunctionJob
from runner.store import readonly
from runner.store.engine import read_transaction, write_transaction
from runner.store.sql import _LOCKED_DUE_ROWS, EventFilter, EventRow, Store
from runner.store.tables import cleanup_configs, events, executions, state

BERLIN = "Europe/Berlin"


def t(when: str) -> datetime:
    """``"03-27 12:00"``: that minute of 2027, in UTC."""
    return datetime.fromisoformat(f"2027-{when}").replace(tzinfo=UTC)


NOW = t("03-27 12:00")
LATER = t("04-10 12:00")


def event(name: str, **fields: Any) -> dict[str, Any]:
    """An event declaration: a command on a daily UTC cron unless ``fields`` say otherwise."""
    return {"name": name, "command": ["echo", name], "schedule": {"cron": "0 2 * * *"}} | fields


def policy(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "directory": f"/srv/{name}", "max_files": 10} | fields


@dataclass
class Rig:
    """A store on the test's database, and config files written to a temporary directory."""

    store: Store
    tmp_path: Path

    def config(
        self, events: Sequence[dict[str, Any]] = (), cleanup: Sequence[dict[str, Any]] = ()
    ) -> Config:
        path = self.tmp_path / "scheduler.yaml"
        document = {"events": list(events), "cleanup": list(cleanup)}
        path.write_text(yaml.safe_dump({k: v for k, v in document.items() if v}))
        return configs.load([path], {}, NOW)

    async def apply(self, config: Config, now: datetime = NOW, allow_empty: bool = False) -> Plan:
        return await reconciler.apply(self.store, config, now, allow_empty)

    async def event(self, name: str) -> EventRow:
        row = await self.store.get_event(name)
        assert row is not None, f"no event {name}"
        return row

    async def names(self) -> list[str]:
        return [row.name for row in await self.store.list_events()]

    async def write(self, statement: Executable) -> None:
        async with write_transaction(self.store.engine) as conn:
            await conn.execute(statement)

    async def rows(self, table: Table) -> list[tuple[Any, ...]]:
        """Every row of ``table``, raw, in a stable order."""
        async with read_transaction(self.store.engine) as conn:
            result = await conn.execute(select(table).order_by(*table.primary_key.columns))
            return [tuple(row) for row in result]

    async def policies(self) -> list[tuple[Any, ...]]:
        """Cleanup policies as stored: name, source, directory, pattern, priority, max_files."""
        c = cleanup_configs.c
        query = select(c.name, c.source, c.directory, c.pattern, c.priority, c.spec)
        async with read_transaction(self.store.engine) as conn:
            rows = await conn.execute(query.order_by(c.name))
            return [(*row[:5], row.spec["max_files"]) for row in rows]

    async def snapshot(self) -> list[list[tuple[Any, ...]]]:
        """Everything reconcile may write, raw: to show that nothing was."""
        return [await self.rows(table) for table in (events, cleanup_configs, state)]

    async def add_execution(self, name: str, outcome: str, **fields: Any) -> None:
        """A finished execution of event ``name`` scheduled at NOW, as the runner writes one."""
        owner = select(events.c.id).where(events.c.name == name).scalar_subquery()
        values = {"scheduled_time": NOW, "attempt": 1, "created_at": NOW} | fields
        await self.write(insert(executions).values(event_id=owner, outcome=outcome, **values))

    async def count(self, table: Table) -> int:
        async with read_transaction(self.store.engine) as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def rig(db_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    store = await Store.open(db_url)
    try:
        yield Rig(store, tmp_path)
    finally:
        await store.close()


def user_event(name: str) -> dict[str, Any]:
    """A row as the API or the library will insert it: source "user"."""
    spec = EventSpec(
        name=name,
        schedule={"cron": "0 5 * * *", "timezone": "UTC"},
        job=FunctionJob("myapp.jobs:run", {"x": 1}),
    )
    return {
        "name": name,
        "source": "user",
        "spec": spec.to_json(),
        "spec_hash": spec.spec_hash,
        "schedule_hash": spec.schedule_hash,
        "recurring": True,
        "next_execution": t("03-28 05:00"),
        "execution_count": 4,
        "created_at": NOW,
        "updated_at": NOW,
    }


def user_policy(name: str) -> dict[str, Any]:
    spec = CleanupSpec(name=name, directory="/srv/mine", max_files=1)
    return {
        "name": name,
        "source": "user",
        "spec": spec.to_json(),
        "spec_hash": spec.spec_hash,
        "directory": spec.directory,
        "pattern": spec.pattern,
        "created_at": NOW,
        "updated_at": NOW,
    }


# --- create ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "now", "expected"),
    [
        # 02:00 Berlin does not exist on 2027-03-28: it fires when the clock jumps
        ({"cron": "0 2 * * *", "timezone": BERLIN}, NOW, t("03-28 01:00")),
        # 02:30 Berlin occurs twice on 2027-10-31: it fires the first time
        ({"cron": "30 2 * * *", "timezone": BERLIN}, t("10-30 12:00"), t("10-31 00:30")),
        # anchored to the 31st: clamped to Feb 28, never drifting
        ({"every": "1mo", "start": "2027-01-31T10:00:00"}, t("02-01 00:00"), t("02-28 10:00")),
        # days follow the wall clock: 09:00 Berlin is 07:00Z once summer time starts
        ({"every": "1d", "start": "2027-03-20T09:00", "timezone": BERLIN}, NOW, t("03-28 07:00")),
        ({"every": {"minutes": 15}}, t("03-27 12:07"), t("03-27 12:15")),
        ({"at": "2027-12-01T10:00:00+01:00"}, NOW, t("12-01 09:00")),
        # a one-time event in the past keeps its time: the misfire policy decides, visibly
        ({"at": "2027-01-01T00:00:00Z"}, NOW, t("01-01 00:00")),
    ],
)
async def test_apply_creates_events_with_their_next_execution(
    rig: Rig, schedule: dict[str, Any], now: datetime, expected: datetime
) -> None:
    config = rig.config([event("job", schedule=schedule)])
    plan = await rig.apply(config, now)
    assert [c.render() for c in plan.changes] == ["+ create event job"]
    (row,) = await rig.store.list_events()
    assert (row.name, row.source, row.status) == ("job", "config", "active")
    assert row.next_execution == expected
    assert (row.execution_count, row.failure_count, row.last_execution) == (0, 0, None)
    assert row.spec == config.events[0]
    assert row.config_revision == config.revision


async def test_jitter_delays_by_a_stable_offset_within_bounds(rig: Rig) -> None:
    jittered = event("spread-me", schedule={"every": "1h"}, jitter=600)
    offsets = []
    for now in (NOW, LATER + timedelta(minutes=17)):
        await rig.apply(rig.config([jittered]), now)
        row = await rig.event("spread-me")
        assert row.next_execution is not None
        assert row.next_execution > now
        on_the_hour = row.next_execution.replace(minute=0, second=0, microsecond=0)
        offsets.append(row.next_execution - on_the_hour)
        await rig.apply(rig.config([]), now, allow_empty=True)
    assert offsets[0] == offsets[1]
    assert timedelta(0) < offsets[0] <= timedelta(seconds=600)


async def test_cleanup_policies_are_created_updated_and_deleted(rig: Rig) -> None:
    created = await rig.apply(rig.config(cleanup=[policy("logs", pattern="*.log"), policy("tmp")]))
    assert created.summary() == "Plan: 2 to create, 0 to update, 0 to delete."
    assert await rig.policies() == [
        ("logs", "config", "/srv/logs", "*.log", 100, 10),
        ("tmp", "config", "/srv/tmp", "*", 100, 10),
    ]
    changed = await rig.apply(rig.config(cleanup=[policy("logs", max_files=3, priority=5)]))
    assert [c.render() for c in changed.changes] == [
        "~ update cleanup logs: max_files, pattern, priority",
        "- delete cleanup tmp",
    ]
    assert await rig.policies() == [("logs", "config", "/srv/logs", "*", 5, 3)]


@pytest.mark.postgres
async def test_after_a_large_apply_a_claim_walks_the_due_index(
    migrated_pg_url: str, tmp_path: Path
) -> None:
    store = await Store.open(migrated_pg_url)
    try:
        rig = Rig(store, tmp_path)
        due = {"at": "2027-03-27T11:00:00Z"}  # an hour before NOW
        # Without statistics PostgreSQL 15 sorts every due event from about this many on.
        await rig.apply(rig.config([event(f"e{i}", schedule=due) for i in range(10_000)]))
        claim = _LOCKED_DUE_ROWS.params(due_by=NOW, claim_limit=100)
        compiled = claim.compile(
            dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}
        )
        async with read_transaction(store.engine) as conn:
            plan = await conn.scalar(text(f"EXPLAIN (FORMAT JSON) {compiled}"))
        (due_part,) = [
            p for p in _plan_nodes(plan[0]["Plan"]) if p.get("Subplan Name") == "CTE due_0"
        ]
        walked = {node["Node Type"] for node in _plan_nodes(due_part)}
        assert "Sort" not in walked  # not every due event sorted on each claim
        assert "Index Scan" in walked
    finally:
        await store.close()


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    """``node`` of an EXPLAIN (FORMAT JSON) plan and every node below it."""
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


# --- idempotence ------------------------------------------------------------------------------


async def test_applying_the_same_config_twice_writes_nothing(rig: Rig) -> None:
    declared = [event("a"), event("b", schedule={"every": "1h"})]
    config = rig.config(declared, [policy("logs")])
    await rig.apply(config)
    before = await rig.snapshot()

    again = rig.config(declared, [policy("logs")])  # re-read from disk, as a restart would
    plan = await rig.apply(again, LATER)

    assert plan.empty
    assert plan.summary() == "No changes: the database matches the config."
    assert await rig.snapshot() == before
    recorded = await rig.store.config_state()
    assert recorded["revision"] == config.revision == again.revision
    assert recorded["applied_at"] == NOW.isoformat()
    assert recorded["error"] is None


async def test_a_recorded_error_keeps_the_revision_and_the_next_apply_clears_it(
    rig: Rig,
) -> None:
    config = rig.config([event("a")])
    await rig.apply(config)
    await rig.store.record_config_error("scheduler.yaml:3:5: error: bad", LATER)
    recorded = await rig.store.config_state()
    assert recorded["revision"] == config.revision
    assert recorded["error"] == "scheduler.yaml:3:5: error: bad"
    await rig.apply(config, LATER)
    recorded = await rig.store.config_state()
    assert (recorded["revision"], recorded["error"]) == (config.revision, None)


async def test_concurrent_applies_of_one_config_both_succeed(rig: Rig, db_url: str) -> None:
    """Every replica reconciles the same config at start-up: that must be safe."""
    config = rig.config([event(f"job-{i}") for i in range(30)], [policy("logs")])
    other = await Store.open(db_url)
    try:
        results = await asyncio.gather(
            rig.apply(config), reconciler.apply(other, config, NOW), return_exceptions=True
        )
    finally:
        await other.close()
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert await rig.count(events) == 30
    assert (await rig.store.config_state())["revision"] == config.revision


# --- updates ----------------------------------------------------------------------------------

RUNTIME = {
    "next_execution": t("04-02 02:00"),
    "last_execution": t("04-01 02:00"),
    "execution_count": 7,
    "failure_count": 2,
    "paused": True,
}


@pytest.mark.parametrize(
    ("changes", "fields", "next_execution"),
    [
        ({"description": "Dump the database"}, ("description",), None),
        ({"timeout": 60}, ("timeout",), None),
        ({"retry": {"attempts": 1, "delay": 5}}, ("retry",), None),
        ({"command": "pg_dump -f /x"}, ("job",), None),
        ({"schedule": {"cron": "0 4 * * *"}}, ("schedule",), t("04-11 04:00")),
        (
            {"schedule": {"cron": "0 2 * * *", "timezone": "Asia/Tokyo"}},
            ("schedule",),
            t("04-10 17:00"),
        ),
        (
            {"schedule": {"every": "1d", "start": "2027-01-01T06:30"}},
            ("schedule",),
            t("04-11 06:30"),
        ),
    ],
)
async def test_update_keeps_runtime_state_unless_the_schedule_moves(
    rig: Rig,
    changes: dict[str, Any],
    fields: tuple[str, ...],
    next_execution: datetime | None,
) -> None:
    await rig.apply(rig.config([event("job"), event("other")]))
    await rig.write(update(events).where(events.c.name == "job").values(RUNTIME))
    untouched = await rig.event("other")

    config = rig.config([event("job", **changes), event("other")])
    plan = await rig.apply(config, LATER)

    (change,) = plan.changes
    assert (change.action, change.name, change.fields) == ("update", "job", fields)
    assert change.reschedule is (next_execution is not None)
    row = await rig.event("job")
    assert row.spec == config.events[0]
    assert row.config_revision == config.revision
    expected = RUNTIME | ({"next_execution": next_execution} if next_execution else {})
    kept = {k: getattr(row, k) for k in RUNTIME}
    assert kept == expected  # the pause survives a new schedule; counters and last run too
    assert row.display_status == "paused"
    assert await rig.event("other") == untouched


# --- deletes, user events, refusals --------------------------------------------------------------


async def test_removed_event_is_retired_and_keeps_its_history(rig: Rig) -> None:
    await rig.apply(rig.config([event("kept"), event("gone")]))
    await rig.add_execution("gone", "succeeded")
    plan = await rig.apply(rig.config([event("kept")]), LATER)
    assert [c.render() for c in plan.changes] == ["- delete event gone"]
    assert await rig.names() == ["kept"], "a removed event is not listed"
    retired = await rig.event("gone")
    assert (retired.status, retired.next_execution) == ("removed", None)
    assert [r.outcome for r in await rig.store.history("gone")] == ["succeeded"]
    # Applying the same config again plans nothing for it: it is not deleted twice.
    assert (await rig.apply(rig.config([event("kept")]), LATER)).empty
    assert [r.name for r in await rig.store.list_events(EventFilter(status="removed"))] == ["gone"]


async def test_a_removed_event_declared_again_comes_back_with_its_history(rig: Rig) -> None:
    await rig.apply(rig.config([event("kept"), event("back")]))
    await rig.add_execution("back", "failed")
    await rig.apply(rig.config([event("kept")]), NOW + timedelta(hours=1))
    plan = await rig.apply(rig.config([event("kept"), event("back", timeout=5)]), LATER)
    assert [c.render() for c in plan.changes] == ["+ create event back (again, with its history)"]
    revived = await rig.event("back")
    assert revived.status == "active"
    assert revived.spec.timeout == 5
    assert revived.next_execution == t("04-11 02:00")
    assert [r.outcome for r in await rig.store.history("back")] == ["failed"]
    assert await rig.names() == ["back", "kept"]


async def test_an_empty_config_after_everything_was_removed_is_not_refused(rig: Rig) -> None:
    await rig.apply(rig.config([event("a")]))
    await rig.apply(rig.config([]), LATER, allow_empty=True)
    # Only removed events are left: nothing to lose, so no --allow-empty is needed.
    assert (await rig.apply(rig.config([]), LATER)).empty


async def test_a_removed_event_goes_when_retention_has_taken_its_history(rig: Rig) -> None:
    await rig.apply(rig.config([event("kept"), event("gone")]))
    for name in ("kept", "gone"):
        await rig.add_execution(name, "succeeded", finished_at=NOW)
    await rig.apply(rig.config([event("kept")]), NOW)
    assert await rig.store.purge_history(NOW - timedelta(days=1)) == 0
    assert (await rig.event("gone")).status == "removed", "kept while it has history"
    assert await rig.store.purge_history(LATER) == 2
    assert await rig.store.get_event("gone") is None
    assert await rig.names() == ["kept"], "an event of the config stays, history or not"


async def test_user_events_are_never_touched(rig: Rig) -> None:
    await rig.write(insert(events).values(user_event("mine")))
    before = await rig.rows(events)
    for declared in ([event("a"), event("b")], [event("b", timeout=5)], []):
        plan = await rig.apply(rig.config(declared), LATER, allow_empty=True)
        assert "mine" not in {change.name for change in plan.changes}
        mine = [r for r in await rig.rows(events) if "mine" in r]
        assert mine == before
    assert await rig.names() == ["mine"]


@pytest.mark.parametrize(
    ("kind", "declared_events", "declared_policies"),
    [("event", ["new", "mine"], []), ("cleanup", ["new"], ["mine"])],
)
async def test_config_taking_a_user_name_is_a_conflict_and_applies_nothing(
    rig: Rig, kind: str, declared_events: list[str], declared_policies: list[str]
) -> None:
    await rig.apply(rig.config([event("old")]))
    table, row = (events, user_event) if kind == "event" else (cleanup_configs, user_policy)
    await rig.write(insert(table).values(row("mine")))
    before = await rig.snapshot()
    config = rig.config(
        [event(name) for name in declared_events], [policy(name) for name in declared_policies]
    )
    with pytest.raises(Conflict, match=f"{kind} 'mine' already exists as a user {kind}"):
        await rig.apply(config, LATER)
    assert await rig.snapshot() == before


@pytest.mark.parametrize(
    ("stored", "allow_empty", "refused"),
    [
        ("config", False, True),
        ("config", True, False),
        ("cleanup", False, True),
        ("user", False, False),  # only the user's events: nothing of the config's to lose
        ("nothing", False, False),
    ],
)
async def test_empty_config_is_refused_while_config_declarations_exist(
    rig: Rig, stored: str, allow_empty: bool, refused: bool
) -> None:
    if stored == "config":
        await rig.apply(rig.config([event("a"), event("b")]))
    elif stored == "cleanup":
        await rig.apply(rig.config(cleanup=[policy("logs")]))
    elif stored == "user":
        await rig.write(insert(events).values(user_event("mine")))
    before = await rig.snapshot()
    empty = rig.config()

    if refused:
        with pytest.raises(Conflict, match="--allow-empty"):
            await rig.apply(empty, LATER, allow_empty)
        assert await rig.snapshot() == before
        return
    await rig.apply(empty, LATER, allow_empty)
    assert await rig.names() == (["mine"] if stored == "user" else [])
    assert await rig.count(cleanup_configs) == 0
    assert (await rig.store.config_state())["revision"] == empty.revision


# --- plans --------------------------------------------------------------------------------------


async def test_plan_lists_creates_updates_and_deletes_without_writing(rig: Rig) -> None:
    await rig.apply(rig.config([event("a"), event("b")], [policy("logs")]))
    before = await rig.snapshot()
    config = rig.config(
        [event("a", description="now described", timeout=30), event("c")],
        [policy("logs", max_files=1), policy("tmp")],
    )

    plan = await reconciler.plan(rig.store, config)

    assert [c.render() for c in plan.changes] == [
        "~ update event a: description, timeout",
        "+ create event c",
        "- delete event b",
        "~ update cleanup logs: max_files",
        "+ create cleanup tmp",
    ]
    assert plan.summary() == "Plan: 2 to create, 2 to update, 1 to delete."
    assert plan.conflicts == ()
    assert not plan.refused_empty
    assert await rig.snapshot() == before
    assert [c.render() for c in (await rig.apply(config, LATER)).changes] == [
        c.render() for c in plan.changes
    ]
    assert await rig.names() == ["a", "c"]


async def test_two_configs_live_at_once_are_reported_not_fought_over(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = rig.config([event("a")]), rig.config([event("a"), event("b")])
    await reconciler.apply(rig.store, old, NOW, runner_id="host-a:1")
    with caplog.at_level(logging.WARNING, logger="runner.config"):
        await reconciler.apply(rig.store, new, NOW + timedelta(seconds=20), runner_id="host-b:2")
        await reconciler.apply(rig.store, new, NOW + timedelta(seconds=30), runner_id="host-b:2")
    (warning,) = [r.getMessage() for r in caplog.records]  # once, not on every apply
    assert "applied by host-a:1 20s ago: two configs are live" in warning
    assert (await rig.store.config_state())["applied_by"] == "host-b:2"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="runner.config"):
        await reconciler.apply(rig.store, old, LATER, runner_id="host-a:1")  # long after
    assert caplog.records == []


# --- once, on a URL (runner apply, runner plan) ----------------------------------------------


async def test_applying_once_on_a_url_is_the_stores_apply(rig: Rig, db_url: str) -> None:
    # `runner apply` reconciles through apply_to (on SQLite without the async store): the
    # same rows as the store's apply, the same no-op the second time, the same refusal.
    config = rig.config([event("a"), event("b", schedule={"every": "15m"})], [policy("p")])
    planned = await asyncio.to_thread(reconciler.plan_of, db_url, config)
    assert (planned.count("create"), planned.empty) == (3, False)
    done = await asyncio.to_thread(reconciler.apply_to, db_url, config, NOW)
    assert done.count("create") == 3
    written = await rig.snapshot()
    again = await asyncio.to_thread(reconciler.apply_to, db_url, config, LATER)
    assert again.empty
    assert await rig.snapshot() == written
    assert (await asyncio.to_thread(reconciler.plan_of, db_url, config)).empty
    assert (await rig.event("b")).next_execution == NOW + timedelta(minutes=15)
    with pytest.raises(Conflict, match="refusing to delete them all"):
        await asyncio.to_thread(reconciler.apply_to, db_url, Config(config.settings), LATER)
    assert await rig.names() == ["a", "b"]


async def test_an_sqlite_file_read_without_the_store_reads_as_the_store_does(
    sqlite_url: str, tmp_path: Path
) -> None:
    # `runner plan` and a no-op `runner apply` read the file with sqlite3 alone.
    path = sqlite_file(sqlite_url)
    assert path is not None
    assert readonly.read(path) is None  # no file yet: the store makes it
    store = await Store.open(sqlite_url)
    try:
        rig = Rig(store, tmp_path)
        config = rig.config([event("a"), event("gone")], [policy("p")])
        await rig.apply(config)
        await rig.apply(rig.config([event("a"), event("b")], [policy("p")]), LATER)
        await rig.write(insert(events).values(user_event("mine")))
        found = readonly.read(path)
        assert found is not None
        previous, stored_events, stored_cleanups = found
        assert previous == await store.config_state()
        expected_events, expected_cleanups = await store.stored_declarations()
        for got, expected in (
            (stored_events, expected_events),
            (stored_cleanups, expected_cleanups),
        ):
            assert got.keys() == expected.keys()
            for name, row in got.items():
                assert (row.source, row.spec_hash, row.schedule_hash, row.retired) == (
                    expected[name].source,
                    expected[name].spec_hash,
                    expected[name].schedule_hash,
                    expected[name].retired,
                )
                assert dict(row.spec) == dict(expected[name].spec)
        assert stored_events["gone"].retired
    finally:
        await store.close()


async def test_an_sqlite_file_behind_the_schema_is_left_to_the_store(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = sqlite_file(sqlite_url)
    assert path is not None
    store = await Store.open(sqlite_url)
    try:
        await Rig(store, tmp_path).write(text("UPDATE alembic_version SET version_num = '0005'"))
    finally:
        await store.close()
    assert readonly.read(path) is None
