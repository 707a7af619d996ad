"""The runner loop with a fake clock and a real store, on SQLite and PostgreSQL.

Time moves only when a test moves it, so every due time, retry and misfire is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from runner import loop as loop_module
from runner import reconciler
from runner.errors import StoreError
from runner.loop import (
    CLAIMS_MEASURED,
    FULL_CHECK,
    MAX_CLAIM_LEAD,
    MIN_CLAIM_LEAD,
    Runner,
)
from runner.results import CleanupReport, JobResult
from runner.specs import (
    Config,
    EventSpec,
    FunctionJob,
    HousekeeperSettings,
    MisfirePolicy,
    RetryPolicy,
    Settings,
)
from runner.store.sql import ExecutionRow, Finished, Store
from runner.store.tables import events, executions
from tests.fakes import FakeClock
from tests.integration import sample_jobs

T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
MODULE = "tests.integration.sample_jobs"
Make = Callable[..., EventSpec]


@pytest.fixture
def event() -> Make:
    """A factory for event specs running one of the sample jobs."""

    def make(name: str, function: str = "record", **fields: Any) -> EventSpec:
        fields.setdefault("schedule", {"every": "1m", "timezone": "UTC"})
        fields.setdefault("retry", RetryPolicy(attempts=0))
        return EventSpec(name=name, job=FunctionJob(f"{MODULE}:{function}"), **fields)

    return make


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    sample_jobs.CALLS.clear()
    sample_jobs.GATES.clear()
    store = await Store.open(db_url, database_clock=False)  # the fake clock governs leases too
    yield store
    await store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def start(store: Store, clock: FakeClock, *specs: EventSpec, **settings: Any) -> Runner:
    """Apply ``specs`` as the config at the clock's time and return a runner for them."""
    config = Config(Settings(**settings), tuple(specs), revision="rev-1")
    await reconciler.apply(store, config, clock.now())
    return Runner(store, config.settings, clock, runner_id="test:1", revision=lambda: "rev-1")


async def finish_runs(runner: Runner) -> None:
    """Wait for every started run to end and be recorded."""
    while runner.runs:
        await asyncio.gather(*(r.task for r in list(runner.runs.values())))


async def one_turn(runner: Runner, clock: FakeClock) -> None:
    """Run the loop for one turn: it stops at the end of its first sleep."""
    original = clock.sleep_until

    async def sleep_once(deadline: datetime, wake: asyncio.Event) -> None:
        await original(deadline, wake)
        runner.stop()

    clock.sleep_until = sleep_once  # type: ignore[method-assign]
    await runner.run()


async def history(store: Store, name: str | None = None) -> list[ExecutionRow]:
    """Executions oldest first."""
    return sorted(await store.history(name, 1000), key=lambda r: (r.scheduled_time, r.attempt))


def outcomes(rows: list[ExecutionRow]) -> list[tuple[str, str, int, str]]:
    return [(r.event, f"{r.scheduled_time:%H:%M:%S}", r.attempt, r.outcome) for r in rows]


async def test_due_event_runs_and_the_schedule_moves_on(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a"))
    clock.set(T0 + timedelta(minutes=1, seconds=3))
    next_due = await runner.tick()
    await finish_runs(runner)
    (row,) = await history(store)
    assert (row.scheduled_time, row.outcome, row.trigger, row.attempt) == (
        T0 + timedelta(minutes=1),
        "succeeded",
        "schedule",
        1,
    )
    assert row.result == {"ok": True}
    assert (row.runner_id, row.config_revision) == ("test:1", "rev-1")
    assert row.start_time == clock.now()
    assert next_due == T0 + timedelta(minutes=2)  # from the schedule, not from the run
    stored = await store.get_event("a")
    assert stored is not None
    assert (stored.execution_count, stored.last_execution) == (1, clock.now())


async def test_a_run_that_crashes_gives_its_slot_back_and_stays_for_recovery(
    store: Store,
    clock: FakeClock,
    event: Make,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failure of the runner's own code around a job (not the job's) is logged, and
    the run's slot is free again; its record stays running, for recovery to settle."""

    async def broken(*_args: object) -> JobResult:
        raise RuntimeError("a bug in the runner")

    monkeypatch.setattr(loop_module, "run_job", broken)
    runner = await start(store, clock, event("a"), max_concurrent_executions=1)
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    (run,) = runner.runs.values()
    await asyncio.wait([run.task])
    assert runner.runs == {}
    assert "crashed" in caplog.text
    assert outcomes(await history(store)) == [("a", "10:01:00", 1, "running")]


async def test_nothing_runs_before_its_time(store: Store, clock: FakeClock, event: Make) -> None:
    runner = await start(store, clock, event("a"))
    clock.set(T0 + timedelta(seconds=59, microseconds=999_999))
    assert await runner.tick() == T0 + timedelta(minutes=1)
    assert runner.runs == {}
    assert await history(store) == []


async def test_concurrency_limit_holds_and_the_rest_wait_their_turn(
    store: Store, clock: FakeClock, event: Make
) -> None:
    specs = [event(f"e{i}", "wait_for_gate") for i in range(5)]
    runner = await start(store, clock, *specs, max_concurrent_executions=2)
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    assert len(runner.runs) == 2
    first = {r.started.spec.name for r in runner.runs.values()}
    for name in first:
        sample_jobs.GATES.setdefault(name, asyncio.Event()).set()
    await finish_runs(runner)
    await runner.tick()  # the two freed slots go to two more
    assert len(runner.runs) == 2
    for gate_name in [f"e{i}" for i in range(5)]:
        sample_jobs.GATES.setdefault(gate_name, asyncio.Event()).set()
    await finish_runs(runner)
    await runner.tick()
    await finish_runs(runner)
    rows = await history(store)
    assert sorted(r.event for r in rows) == [f"e{i}" for i in range(5)]
    assert {r.outcome for r in rows} == {"succeeded"}


async def test_run_once_records_the_runs_that_ended_in_its_next_claim(
    store: Store, clock: FakeClock, event: Make
) -> None:
    specs = [event(f"e{i}") for i in range(5)]
    runner = await start(store, clock, *specs, max_concurrent_executions=2)
    clock.set(T0 + timedelta(minutes=1))
    finishes: list[int] = []
    finish = store.finish

    async def counted(batch: Any, runner_id: str) -> set[int]:
        finishes.append(len(batch))
        return await finish(batch, runner_id)

    store.finish = counted  # type: ignore[method-assign, assignment]
    await runner.run_once()
    rows = await history(store)
    assert sorted((r.event, r.outcome) for r in rows) == [(f"e{i}", "succeeded") for i in range(5)]
    assert finishes == []  # each batch was recorded by the claim after it, the last one too
    assert runner.runs == {}


async def test_ended_runs_a_failed_claim_took_are_recorded_on_their_own(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a"), event("b"), max_concurrent_executions=1)
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    (run,) = runner.runs.values()
    runner._claim_waits = True  # as in run_once: the recorder leaves them to the claim
    await asyncio.wait([run.task])
    await runner.recorded.wait()
    runner._claim_waits = False

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("database write failed: disk I/O error")

    store.start_due = failing  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        await runner.tick()
    await finish_runs(runner)
    assert outcomes(await history(store)) == [("a", "10:01:00", 1, "succeeded")]


async def test_runs_of_one_event_ended_together_settle_it_in_the_order_they_ended(
    store: Store, clock: FakeClock, event: Make
) -> None:
    """Two runs of an event (overlap: allow) recorded in one batch: the event ends as
    the later one left it, failed with a retry to come, not as the earlier success."""
    await start(store, clock, event("a", overlap="allow", retry=RetryPolicy(attempts=1)))
    first = await store.start_due(T0 + timedelta(minutes=1), "test:1", 10, "rev-1", 30)
    second = await store.start_due(T0 + timedelta(minutes=2), "test:1", 10, "rev-1", 30)
    ended = T0 + timedelta(minutes=2, seconds=1)
    (run1,), (run2,) = first.started, second.started
    batch = [
        Finished(run1.execution_id, run1.spec, JobResult("succeeded"), ended, ended),
        Finished(run2.execution_id, run2.spec, JobResult("failed", error="boom"), ended, ended),
    ]
    assert await store.finish(batch, "test:1") == {run1.execution_id, run2.execution_id}
    stored = await store.get_event("a")
    assert stored is not None
    assert (stored.failure_count, stored.last_error) == (1, "boom")


async def test_a_claim_records_the_runs_that_ended_before_it_decides(
    store: Store, clock: FakeClock, event: Make
) -> None:
    await start(store, clock, event("a", overlap="forbid"))
    first = await store.start_due(T0 + timedelta(minutes=1), "test:1", 10, "rev-1", 30)
    (run,) = first.started
    ended = T0 + timedelta(minutes=1, seconds=1)
    done = Finished(run.execution_id, run.spec, JobResult("succeeded"), ended, ended)
    claim = await store.start_due(
        T0 + timedelta(minutes=2), "test:1", 10, "rev-1", 30, None, [done]
    )
    assert claim.recorded == {run.execution_id}
    assert len(claim.started) == 1  # not skipped: the first run's end was recorded first
    assert outcomes(await history(store)) == [
        ("a", "10:01:00", 1, "succeeded"),
        ("a", "10:02:00", 1, "running"),
    ]
    taken = await store.start_due(
        T0 + timedelta(minutes=2), "test:2", 10, "rev-1", 30, None, [done]
    )
    assert taken.recorded == set()  # a run recorded already is not recorded again


@pytest.mark.parametrize(
    ("overlap", "expected"),
    [
        ("forbid", [("a", "10:01:00", 1, "succeeded"), ("a", "10:02:00", 1, "skipped")]),
        ("allow", [("a", "10:01:00", 1, "succeeded"), ("a", "10:02:00", 1, "succeeded")]),
        ("replace", [("a", "10:01:00", 1, "interrupted"), ("a", "10:02:00", 1, "succeeded")]),
    ],
)
async def test_overlap(
    store: Store,
    clock: FakeClock,
    event: Make,
    overlap: str,
    expected: list[tuple[str, str, int, str]],
) -> None:
    runner = await start(store, clock, event("a", "wait_for_gate", overlap=overlap))
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    first = [run.task for run in runner.runs.values()]
    clock.set(T0 + timedelta(minutes=2))
    await runner.tick()
    if overlap == "replace":  # the replaced run records its end before the gate opens
        done, _ = await asyncio.wait(first, timeout=10)
        assert done == set(first)
    sample_jobs.GATES["a"].set()
    await finish_runs(runner)
    rows = await history(store)
    assert outcomes(rows) == expected
    if overlap == "forbid":
        assert rows[1].error == "previous run still running (overlap: forbid)"
    if overlap == "replace":
        assert rows[0].error == "replaced by a newer run (overlap: replace)"


@pytest.mark.parametrize(
    ("policy", "expected_outcomes", "runs"),
    [
        ("coalesce", ["coalesced"] * 9 + ["succeeded"], 1),
        ("skip", ["missed"] * 10, 0),
        ("all", ["succeeded"], 1),
    ],
)
async def test_misfire_after_downtime_is_recorded(
    store: Store,
    clock: FakeClock,
    event: Make,
    policy: str,
    expected_outcomes: list[str],
    runs: int,
) -> None:
    misfire = MisfirePolicy(policy, grace=30)  # type: ignore[arg-type]
    runner = await start(store, clock, event("a", misfire=misfire))
    clock.set(T0 + timedelta(minutes=10, seconds=45))  # ten occurrences passed, all late
    await runner._claim_and_start(10)
    await finish_runs(runner)
    rows = await history(store)
    assert [r.outcome for r in rows] == expected_outcomes
    assert len(sample_jobs.CALLS) == runs
    stored = await store.get_event("a")
    assert stored is not None
    if policy == "all":
        assert stored.next_execution == T0 + timedelta(minutes=2)  # the next one is still due
    else:
        assert stored.next_execution == T0 + timedelta(minutes=11)


async def test_retries_follow_the_backoff_then_a_one_time_event_fails(
    store: Store, clock: FakeClock, event: Make
) -> None:
    at = {"at": (T0 + timedelta(minutes=1)).isoformat(), "timezone": "UTC"}
    retry = RetryPolicy(attempts=2, delay=60, backoff=2)
    runner = await start(store, clock, event("once", "fail", schedule=at, retry=retry))
    for offset in (60, 60 + 59, 60 + 60, 60 + 60 + 119, 60 + 60 + 120, 10_000):
        clock.set(T0 + timedelta(seconds=offset))
        await runner.tick()
        await finish_runs(runner)
    rows = await history(store)
    starts = [r.start_time - T0 for r in rows if r.start_time]
    assert starts == [timedelta(seconds=s) for s in (60, 120, 240)]
    assert [(r.attempt, r.trigger, r.outcome) for r in rows] == [
        (1, "schedule", "failed"),
        (2, "retry", "failed"),
        (3, "retry", "failed"),
    ]
    assert {r.scheduled_time for r in rows} == {T0 + timedelta(minutes=1)}
    assert rows[2].error == "RuntimeError: boom on attempt 3"
    stored = await store.get_event("once")
    assert stored is not None
    assert (stored.status, stored.failure_count) == ("failed", 3)


async def test_a_recurring_event_keeps_its_schedule_after_failures(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("r", "fail"))
    for minute in (1, 2, 3):
        clock.set(T0 + timedelta(minutes=minute))
        await runner.tick()
        await finish_runs(runner)
    stored = await store.get_event("r")
    assert stored is not None
    assert (stored.status, stored.next_execution) == ("active", T0 + timedelta(minutes=4))
    assert [r.outcome for r in await history(store)] == ["failed"] * 3


async def test_one_time_success_completes(store: Store, clock: FakeClock, event: Make) -> None:
    at = {"at": (T0 + timedelta(seconds=5)).isoformat(), "timezone": "UTC"}
    runner = await start(store, clock, event("once", schedule=at))
    clock.advance(5)
    assert await runner.tick() is None
    await finish_runs(runner)
    stored = await store.get_event("once")
    assert stored is not None
    assert (stored.status, stored.next_execution) == ("completed", None)


async def test_max_executions(store: Store, clock: FakeClock, event: Make) -> None:
    runner = await start(store, clock, event("a", max_executions=2))
    for minute in (1, 2, 3, 4):
        clock.set(T0 + timedelta(minutes=minute))
        await runner.tick()
        await finish_runs(runner)
    assert len(await history(store)) == 2
    stored = await store.get_event("a")
    assert stored is not None
    assert (stored.status, stored.execution_count) == ("completed", 2)


async def test_recovery_of_runs_left_running(store: Store, clock: FakeClock, event: Make) -> None:
    retry = RetryPolicy(attempts=1, delay=30)
    await start(store, clock, event("a", retry=retry))
    async with store.engine.begin() as conn:
        event_id = await conn.scalar(select(events.c.id).where(events.c.name == "a"))
        await conn.execute(
            insert(executions).values(
                event_id=event_id,
                scheduled_time=T0,
                attempt=1,
                outcome="running",
                started_at=T0,
                runner_id="dead:42",
                lease_until=T0 + timedelta(seconds=30),
                created_at=T0,
            )
        )
    clock.set(T0 + timedelta(seconds=10))
    assert await store.recover(clock.now()) == 0  # its lease is still valid
    clock.set(T0 + timedelta(seconds=31))
    assert await store.recover(clock.now()) == 1
    (row,) = await history(store)
    assert row.outcome == "failed"
    assert row.error == "runner stopped: dead:42 ended without finishing this run"
    runner = Runner(store, Settings(), clock, runner_id="test:1")
    clock.set(T0 + timedelta(seconds=61))  # the retry, 30 s after the recovery
    await runner.tick()
    await finish_runs(runner)
    retried = (await history(store))[1]
    assert (retried.scheduled_time, retried.attempt, retried.trigger) == (T0, 2, "retry")
    assert retried.outcome == "succeeded"


async def test_an_event_due_and_triggered_at_once_is_claimed_once_a_time(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a", overlap="allow"))
    clock.set(T0 + timedelta(minutes=1, seconds=3))
    assert await store.request_run("a", clock.now())
    await runner.tick()  # the trigger first, then the schedule: one run each
    await finish_runs(runner)
    rows = await history(store)
    assert [(r.trigger, r.scheduled_time, r.outcome) for r in rows] == [
        ("schedule", T0 + timedelta(minutes=1), "succeeded"),
        ("manual", clock.now(), "succeeded"),
    ]


@pytest.mark.postgres
async def test_a_claim_passes_over_the_events_another_runner_holds(
    migrated_pg_url: str, clock: FakeClock, event: Make
) -> None:
    store = await Store.open(migrated_pg_url, database_clock=False)
    try:
        runner = await start(store, clock, *(event(f"e{i}") for i in range(4)))
        clock.set(T0 + timedelta(minutes=1))
        async with store.engine.connect() as other, other.begin():  # another runner's claim
            held = events.c.name.in_(["e0", "e2"])
            await other.execute(select(events.c.id).where(held).with_for_update())
            await runner.tick()  # does not wait for them
            await finish_runs(runner)
            assert sorted(r.event for r in await history(store)) == ["e1", "e3"]
        await runner.tick()
        await finish_runs(runner)
        assert sorted(r.event for r in await history(store)) == ["e0", "e1", "e2", "e3"]
    finally:
        await store.close()


async def test_trigger_pause_and_resume(store: Store, clock: FakeClock, event: Make) -> None:
    runner = await start(store, clock, event("a", schedule={"every": "1h", "timezone": "UTC"}))
    clock.advance(7)
    assert await store.request_run("a", clock.now())
    assert not await store.request_run("nope", clock.now())
    await runner.tick()
    await finish_runs(runner)
    (manual,) = await history(store)
    assert (manual.trigger, manual.scheduled_time, manual.outcome) == (
        "manual",
        clock.now(),
        "succeeded",
    )
    assert await store.set_paused("a", True, clock.now())
    clock.set(T0 + timedelta(hours=3, minutes=10))
    assert await runner.tick() is None  # paused: nothing due
    assert await store.set_paused("a", False, clock.now())
    stored = await store.get_event("a")
    assert stored is not None
    assert stored.next_execution == T0 + timedelta(hours=4)  # no catch-up for the pause
    assert len(await history(store)) == 1


async def test_shutdown_interrupts_after_the_grace(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a", "wait_for_gate"))
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    await runner.shutdown(grace=0.05)
    (row,) = await history(store)
    assert row.outcome == "interrupted"
    assert row.error == "interrupted: the runner stopped after 0.05s grace"
    await runner.tick()
    assert runner.runs == {}  # stopped: claims nothing


async def test_a_run_whose_lease_was_lost_is_stopped_and_cannot_overwrite(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a", "wait_for_gate"), lease_seconds=30)
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    (execution_id,) = runner.runs
    async with store.engine.begin() as conn:  # another runner took it over
        await conn.execute(
            update(executions)
            .where(executions.c.id == execution_id)
            .values(runner_id="other:2", outcome="failed", error="taken over")
        )
    clock.advance(11)
    await runner.upkeep()
    await finish_runs(runner)
    (row,) = await history(store)
    assert (row.runner_id, row.outcome, row.error) == ("other:2", "failed", "taken over")


async def test_history_retention_keeps_recent_and_running(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a", "wait_for_gate"), retention_days=1)
    for minute in (1, 2):
        clock.set(T0 + timedelta(minutes=minute))
        await runner.tick()
    clock.set(T0 + timedelta(days=2))
    await runner.upkeep()
    rows = await history(store)
    assert [r.outcome for r in rows] == ["running"]  # the skipped occurrence is gone
    sample_jobs.GATES["a"].set()
    await finish_runs(runner)


async def test_history_retention_runs_hourly_with_the_cutoff_of_its_time(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a"), retention_days=1)
    await runner.upkeep()  # the first turn purges (nothing yet) and starts the hour
    for minute in (1, 2):
        clock.set(T0 + timedelta(minutes=minute))
        await runner.tick()
        await finish_runs(runner)
    assert [f"{r.scheduled_time:%H:%M}" for r in await history(store)] == ["10:01", "10:02"]

    clock.set(T0 + timedelta(days=1, minutes=1, seconds=30))  # the 10:01 run is a day old
    await runner.upkeep()
    assert [f"{r.scheduled_time:%H:%M}" for r in await history(store, "a")] == ["10:02"]
    clock.advance(60)  # 10:02's day is over too, but the hour since the last purge is not
    await runner.upkeep()
    assert len(await history(store, "a")) == 1
    clock.advance(3600)
    await runner.upkeep()
    assert await history(store, "a") == []


async def test_history_retention_off_keeps_everything(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a"), retention_days=1, auto_cleanup_enabled=False)
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    await finish_runs(runner)
    for days in (2, 3):
        clock.set(T0 + timedelta(days=days))
        await runner.upkeep()
    assert [r.outcome for r in await history(store)] == ["succeeded"]


async def test_purge_history_deletes_in_batches_and_old_cleanup_reports(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a"), auto_cleanup_enabled=False)
    for minute in range(1, 6):
        clock.set(T0 + timedelta(minutes=minute))
        await runner.tick()
        await finish_runs(runner)
    old = CleanupReport("logs", "/srv/logs", False, started_at=T0)
    new = CleanupReport("logs", "/srv/logs", False, started_at=T0 + timedelta(minutes=4))
    await store.save_cleanup_reports([old, new], "test:1", clock.now())
    # Runs 10:01-10:03 ended before 10:03:30: a full batch of two, then the rest.
    removed = await store.purge_history(T0 + timedelta(minutes=3, seconds=30), batch=2)
    assert removed == 3
    assert [f"{r.scheduled_time:%H:%M}" for r in await history(store)] == ["10:04", "10:05"]
    assert [r["started_at"] for r in await store.cleanup_reports()] == [new.started_at]


async def test_run_sleeps_until_the_next_due_time(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(
        store, clock, event("a", schedule={"every": "10s", "timezone": "UTC"}), check_interval=60
    )
    clock.set(T0 + timedelta(seconds=3))
    await one_turn(runner, clock)
    assert clock.sleeps == [T0 + timedelta(seconds=10) - MIN_CLAIM_LEAD]  # not a fixed poll


async def test_an_idle_runner_sleeps_long_only_where_the_database_announces_writes(
    store: Store, clock: FakeClock, event: Make
) -> None:
    # Nothing due for an hour. An SQLite file announces every write (inotify), so the loop
    # sleeps a minute at a time; PostgreSQL does not, so it looks every check_interval.
    hourly = event("a", schedule={"every": "1h", "timezone": "UTC"})
    runner = await start(store, clock, hourly, check_interval=1, auto_cleanup_enabled=False)
    await one_turn(runner, clock)
    sqlite = store.engine.dialect.name == "sqlite"
    assert clock.sleeps == [T0 + (FULL_CHECK if sqlite else timedelta(seconds=1))]


async def test_a_manual_run_of_a_paused_event_runs(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a", schedule={"every": "1h", "timezone": "UTC"}))
    assert await store.set_paused("a", True, clock.now())
    assert await store.request_run("a", clock.advance(5))
    await runner.tick()
    await finish_runs(runner)
    assert [(r.trigger, r.outcome) for r in await history(store)] == [("manual", "succeeded")]
    stored = await store.get_event("a")
    assert stored is not None
    assert (stored.display_status, stored.next_execution) == ("paused", T0 + timedelta(hours=1))


async def test_a_reloaded_housekeeping_schedule_takes_effect_at_once(
    store: Store, clock: FakeClock
) -> None:
    # The nightly schedule puts the next housekeeping at 03:00; a reload to every five
    # minutes must not wait for that old time to come round first.
    runner = await start(store, clock, housekeeper=HousekeeperSettings(schedule="0 3 * * *"))
    await runner.upkeep()
    faster = HousekeeperSettings(schedule="*/5 * * * *")
    runner.reconfigure(Settings(housekeeper=faster))
    await runner.upkeep()  # plans 10:05 from the new schedule
    clock.advance(5 * 60)
    await runner.upkeep()
    assert runner.housekeeping is not None
    assert await runner.housekeeping == []  # ran (no policies declared), at 10:05


async def test_a_reloaded_limit_applies_to_the_next_claim(
    store: Store, clock: FakeClock, event: Make
) -> None:
    specs = [event(f"gate-{i}", "wait_for_gate") for i in range(3)]
    runner = await start(store, clock, *specs, max_concurrent_executions=1)
    clock.advance(60)
    await runner.tick()
    assert len(runner.runs) == 1
    runner.reconfigure(Settings(max_concurrent_executions=3))
    await runner.tick()
    assert len(runner.runs) == 3
    for spec in specs:
        sample_jobs.GATES.setdefault(spec.name, asyncio.Event()).set()
    await finish_runs(runner)


# --- claiming ahead ---------------------------------------------------------------------

MS = timedelta(milliseconds=1)


async def waiting_for(clock: FakeClock, *instants: datetime) -> None:
    """Let the started runs' tasks reach their wait for their time."""
    for _ in range(100):
        if clock.waiting == list(instants):
            return
        await asyncio.sleep(0)
    raise AssertionError(f"waiting for {clock.waiting}, expected {list(instants)}")


async def test_a_run_claimed_ahead_starts_at_its_time_and_records_its_true_start(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a"))
    due = T0 + timedelta(minutes=1)
    clock.set(due - 5 * MS)
    assert await runner.tick(due + 5 * MS) == T0 + timedelta(minutes=2)
    assert len(runner.runs) == 1  # claimed: its slot is held from now
    await waiting_for(clock, due)
    ((row,), calls) = await history(store), sample_jobs.CALLS
    assert (row.outcome, row.start_time, calls) == ("running", due, [])  # the planned start
    clock.set(due - timedelta(microseconds=1))
    await waiting_for(clock, due)  # not a microsecond early
    assert sample_jobs.CALLS == []
    clock.set(due + 3 * MS)  # the run's timer fired 3 ms late
    await finish_runs(runner)
    (row,) = await history(store)
    assert (row.outcome, row.scheduled_time, row.start_time) == ("succeeded", due, due + 3 * MS)
    assert [name for name, _, _ in sample_jobs.CALLS] == ["a"]


async def test_a_retry_claimed_ahead_starts_at_its_retry_time(
    store: Store, clock: FakeClock, event: Make
) -> None:
    at = {"at": (T0 + timedelta(minutes=1)).isoformat(), "timezone": "UTC"}
    retry = RetryPolicy(attempts=1, delay=60)
    runner = await start(store, clock, event("once", "fail", schedule=at, retry=retry))
    clock.set(T0 + timedelta(minutes=1))
    await runner.tick()
    await finish_runs(runner)  # failed at 10:01:00: the retry is due at 10:02:00
    retry_at = T0 + timedelta(minutes=2)
    clock.set(retry_at - 5 * MS)
    await runner.tick(retry_at + 5 * MS)
    await waiting_for(clock, retry_at)  # its scheduled time is 10:01, long past
    clock.set(retry_at)
    await finish_runs(runner)
    rows = await history(store)
    assert [(r.attempt, r.trigger, r.start_time) for r in rows] == [
        (1, "schedule", T0 + timedelta(minutes=1)),
        (2, "retry", retry_at),
    ]


async def test_a_manual_run_claimed_with_a_lead_starts_at_once(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a", schedule={"every": "1h", "timezone": "UTC"}))
    assert await store.request_run("a", clock.advance(5))
    await runner.tick(clock.now() + 50 * MS)
    await finish_runs(runner)
    (row,) = await history(store)
    assert (row.trigger, row.outcome, row.start_time) == ("manual", "succeeded", clock.now())


async def claimed_ahead(store: Store, clock: FakeClock, spec: EventSpec) -> tuple[Runner, datetime]:
    """A runner that claimed ``spec``'s run at 10:01 five milliseconds before its time."""
    runner = await start(store, clock, spec)
    due = T0 + timedelta(minutes=1)
    clock.set(due - 5 * MS)
    await runner.tick(due + 5 * MS)
    return runner, due


async def test_a_stop_during_the_lead_lets_the_claimed_run_start_at_its_time(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner, due = await claimed_ahead(store, clock, event("a"))
    stopping = asyncio.create_task(runner.shutdown(grace=30))
    await waiting_for(clock, due)
    clock.set(due)
    await stopping
    (row,) = await history(store)
    assert (row.outcome, row.start_time) == ("succeeded", due)


async def test_a_stop_without_grace_during_the_lead_records_the_run_it_never_started(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner, due = await claimed_ahead(store, clock, event("a"))
    await waiting_for(clock, due)
    await runner.shutdown(grace=0)
    (row,) = await history(store)
    assert row.outcome == "interrupted"  # not left "running", and retried by its policy
    assert row.error == "interrupted: the runner stopped after 0s grace"
    assert sample_jobs.CALLS == []
    assert runner.runs == {}


async def test_the_claim_lead_follows_how_long_claims_take(
    store: Store, clock: FakeClock, event: Make
) -> None:
    runner = await start(store, clock, event("a"), check_interval=60)
    assert runner.claim_lead() == MIN_CLAIM_LEAD  # claims that take no time
    start_due = store.start_due

    async def slow(*args: Any, **kwargs: Any) -> Any:
        clock.advance(0.015)  # a claim that took 15 ms
        return await start_due(*args, **kwargs)

    store.start_due = slow  # type: ignore[method-assign]
    clock.set(T0 + timedelta(minutes=1) - 5 * MS)  # due within the lead
    await one_turn(runner, clock)
    await finish_runs(runner)
    assert runner.claim_lead() == 30 * MS
    # The next claim is 30 ms before the next minute.
    assert clock.sleeps == [T0 + timedelta(minutes=2) - 30 * MS]
    runner._measured(timedelta(seconds=5))
    assert runner.claim_lead() == MAX_CLAIM_LEAD
    for _ in range(CLAIMS_MEASURED):
        runner._measured(timedelta(0))
    assert runner.claim_lead() == MIN_CLAIM_LEAD  # the slow one forgotten


async def test_something_due_during_a_slow_turn_is_claimed_at_once(
    store: Store, clock: FakeClock, event: Make
) -> None:
    # The last claim looked up to 10:00:00.010 and said the next run is at 10:00:00.020,
    # but by the time the turn ended the clock was past 10:00:00.015: turn again at once,
    # not after check_interval. Something due by the claim's horizon that it could not
    # take (the limit, another runner) waits for a wake-up instead.
    runner = await start(store, clock, event("a"), check_interval=1)
    claimed_by = T0 + 10 * MS
    now = T0 + 16 * MS
    assert runner._sleep_deadline(now, T0 + 20 * MS, False, claimed_by) == now
    assert runner._sleep_deadline(now, T0 + 5 * MS, False, claimed_by) == now + 1000 * MS


async def test_a_run_claimed_ahead_is_not_late_for_a_zero_misfire_grace(
    store: Store, clock: FakeClock, event: Make
) -> None:
    spec = event("a", misfire=MisfirePolicy("skip", grace=0))
    runner, due = await claimed_ahead(store, clock, spec)
    clock.set(due)
    await finish_runs(runner)
    assert outcomes(await history(store)) == [("a", "10:01:00", 1, "succeeded")]


async def test_a_turn_claims_what_is_due_within_twice_the_lead(
    store: Store, clock: FakeClock, event: Make
) -> None:
    # The turn comes when the next run is within the lead (20 ms) and claims all that is
    # due within twice that, so a claim serves several runs rather than one.
    due = T0 + timedelta(minutes=1)
    offsets = (0, 15, 35, 45)
    specs = [
        event(f"at-{ms}", schedule={"at": (due + ms * MS).isoformat(), "timezone": "UTC"})
        for ms in offsets
    ]
    runner = await start(store, clock, *specs, check_interval=60)
    clock.set(due - 5 * MS)
    await one_turn(runner, clock)
    assert MIN_CLAIM_LEAD == 20 * MS
    claimed = sorted(r.started.spec.name for r in runner.runs.values())
    assert claimed == ["at-0", "at-15", "at-35"]  # due by 10:01:00.035; 10:01:00.045 is not
    assert clock.sleeps == [due + 45 * MS - MIN_CLAIM_LEAD]
    clock.set(due + 35 * MS)
    await finish_runs(runner)
