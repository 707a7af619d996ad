"""What happens to a due event (decide) and to an event whose run ended (settle).

Fixed aware-UTC times throughout; nothing here reads the clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import occurrences
from runner.dispatch import (
    MAX_BACKLOG,
    STILL_RUNNING,
    Decision,
    DueEvent,
    decide,
    settle,
)
from runner.results import JobOutcome
from runner.specs import (
    EventSpec,
    FunctionJob,
    MisfireMode,
    MisfirePolicy,
    Overlap,
    RetryPolicy,
)

EVERY_MINUTE = {"every": "1m", "timezone": "UTC"}
NIGHTLY_BERLIN = {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}
ONCE = {"at": "2027-01-01T10:00:00Z", "timezone": "UTC"}


def t(clock: str) -> datetime:
    """An aware UTC instant on 2027-01-01 from ``HH:MM[:SS[.ffffff]]``."""
    return datetime.fromisoformat(f"2027-01-01T{clock}+00:00")


def minutes(first: str, count: int) -> list[datetime]:
    """``count`` whole minutes from ``first``."""
    return [t(first) + timedelta(minutes=i) for i in range(count)]


def make_spec(
    schedule: Mapping[str, Any] = EVERY_MINUTE,
    *,
    misfire: MisfireMode = "coalesce",
    grace: float = 300,
    overlap: Overlap = "forbid",
    max_executions: int | None = None,
    retry: RetryPolicy | None = None,
    jitter: int = 0,
) -> EventSpec:
    return EventSpec(
        name="job",
        schedule=schedule,
        job=FunctionJob("tests.nowhere:job"),
        overlap=overlap,
        misfire=MisfirePolicy(misfire, grace),
        max_executions=max_executions,
        retry=retry or RetryPolicy(attempts=2, delay=60, backoff=2),
        jitter=jitter,
    )


def make_due(
    spec: EventSpec | None = None,
    next_execution: datetime | None = None,
    *,
    execution_count: int = 0,
    running: int = 0,
    retry_at: datetime | None = None,
    retry_scheduled_time: datetime | None = None,
    retry_attempt: int | None = None,
    triggered_at: datetime | None = None,
) -> DueEvent:
    return DueEvent(
        id=1,
        spec=spec or make_spec(),
        next_execution=next_execution,
        execution_count=execution_count,
        running=running,
        retry_at=retry_at,
        retry_scheduled_time=retry_scheduled_time,
        retry_attempt=retry_attempt,
        triggered_at=triggered_at,
    )


Row = tuple[datetime, str, str, int]


def rows(decision: Decision) -> list[Row]:
    """The records as (scheduled_time, outcome, trigger, attempt)."""
    return [(r.scheduled_time, r.outcome, r.trigger, r.attempt) for r in decision.records]


def scheduled(times: list[datetime], outcome: str) -> list[Row]:
    return [(when, outcome, "schedule", 1) for when in times]


def flags(decision: Decision) -> tuple[str, bool, bool, bool]:
    return (
        decision.status,
        decision.clear_retry,
        decision.clear_trigger,
        decision.replace_running,
    )


def assert_reasons_given(decision: Decision) -> None:
    """Every occurrence that does not run says why, so the history explains it."""
    for record in decision.records:
        if record.outcome != "running":
            assert record.error


RUN = ("active", True, False, False)  # a scheduled run starts; it supersedes a pending retry
NO_RUN = ("active", False, False, False)


# --- the schedule ----------------------------------------------------------------------


def test_on_time_occurrence_runs_and_next_follows_the_schedule_not_now() -> None:
    decision = decide(make_due(next_execution=t("10:00")), t("10:00:07"))
    assert rows(decision) == [(t("10:00"), "running", "schedule", 1)]
    assert decision.run is not None
    assert decision.run.scheduled_time == t("10:00")
    assert decision.next_execution == t("10:01")
    assert flags(decision) == RUN


def test_nothing_due_changes_nothing() -> None:
    decision = decide(make_due(next_execution=t("10:01")), t("10:00:59.999999"))
    assert decision == Decision((), t("10:01"))


def test_cron_in_a_zone_continues_at_the_next_local_fire() -> None:
    # 02:00 Berlin is 01:00Z in winter.
    spec = make_spec(NIGHTLY_BERLIN)
    decision = decide(make_due(spec, t("01:00")), t("01:00:02"))
    assert rows(decision) == [(t("01:00"), "running", "schedule", 1)]
    assert decision.next_execution == datetime(2027, 1, 2, 1, 0, tzinfo=UTC)


# The runner was down from 10:00 to 10:09:xx with ``every: 1m``: 10 occurrences are due.
# (policy, grace, now, expected rows, next_execution, flags)
MISFIRE_CASES = [
    pytest.param(
        "coalesce",
        300,
        "10:09:30",
        [*scheduled(minutes("10:00", 9), "coalesced"), (t("10:09"), "running", "schedule", 1)],
        "10:10",
        RUN,
        id="coalesce-runs-the-latest-once",
    ),
    pytest.param(
        "coalesce",
        30,
        "10:09:45",
        [*scheduled(minutes("10:00", 9), "coalesced"), (t("10:09"), "running", "schedule", 1)],
        "10:10",
        RUN,
        id="coalesce-runs-even-when-the-latest-is-beyond-grace",
    ),
    pytest.param(
        "skip",
        30,
        "10:09:45",
        scheduled(minutes("10:00", 10), "missed"),
        "10:10",
        NO_RUN,
        id="skip-latest-beyond-grace-runs-nothing",
    ),
    pytest.param(
        "skip",
        30,
        "10:09:20",
        [*scheduled(minutes("10:00", 9), "missed"), (t("10:09"), "running", "schedule", 1)],
        "10:10",
        RUN,
        id="skip-latest-within-grace-runs",
    ),
    pytest.param(
        "skip",
        90,
        "10:09:20",
        [
            *scheduled(minutes("10:00", 8), "missed"),
            (t("10:08"), "coalesced", "schedule", 1),  # 80 s late: within grace
            (t("10:09"), "running", "schedule", 1),
        ],
        "10:10",
        RUN,
        id="skip-backlog-within-grace-is-coalesced",
    ),
    pytest.param(
        "all",
        30,
        "10:09:30",
        [(t("10:00"), "running", "schedule", 1)],
        "10:01",  # still in the past: the next claim takes it
        RUN,
        id="all-runs-the-first",
    ),
]


@pytest.mark.parametrize(
    ("policy", "grace", "now", "expected", "next_execution", "expected_flags"), MISFIRE_CASES
)
def test_misfire_after_ten_minutes_down(
    policy: MisfireMode,
    grace: float,
    now: str,
    expected: list[Row],
    next_execution: str,
    expected_flags: tuple[str, bool, bool, bool],
) -> None:
    spec = make_spec(misfire=policy, grace=grace)
    decision = decide(make_due(spec, t("10:00")), t(now))
    assert rows(decision) == expected
    assert decision.next_execution == t(next_execution)
    assert flags(decision) == expected_flags
    assert_reasons_given(decision)


def test_misfire_all_runs_each_occurrence_over_successive_claims() -> None:
    spec = make_spec(misfire="all", grace=30)
    event, now, ran = make_due(spec, t("10:00")), t("10:09:30"), []
    for _ in range(20):
        decision = decide(event, now)
        if not decision.records:
            break
        ran.extend(rows(decision))
        event = replace(event, next_execution=decision.next_execution, execution_count=len(ran))
    assert ran == scheduled(minutes("10:00", 10), "running")
    assert event.next_execution == t("10:10")


@pytest.mark.parametrize(
    ("now", "outcome"),
    [
        ("10:00:29.999999", "running"),
        ("10:00:30", "running"),  # exactly grace seconds late: not later than grace
        ("10:00:30.000001", "missed"),
        ("10:00:59", "missed"),
    ],
)
def test_grace_boundary(now: str, outcome: str) -> None:
    spec = make_spec(misfire="skip", grace=30)
    decision = decide(make_due(spec, t("10:00")), t(now))
    assert rows(decision) == [(t("10:00"), outcome, "schedule", 1)]
    assert decision.next_execution == t("10:01")


def test_zero_grace_still_runs_an_occurrence_decided_at_its_exact_time() -> None:
    spec = make_spec(misfire="skip", grace=0)
    assert rows(decide(make_due(spec, t("10:00")), t("10:00"))) == [
        (t("10:00"), "running", "schedule", 1)
    ]


def test_an_occurrence_claimed_ahead_of_its_time_is_not_late() -> None:
    # Claimed at 09:59:59.990 for what is due by 10:00:00.010: zero grace still runs it.
    spec = make_spec(misfire="skip", grace=0)
    decision = decide(make_due(spec, t("10:00")), t("10:00:00.010"), t("09:59:59.990"))
    assert rows(decision) == [(t("10:00"), "running", "schedule", 1)]
    assert decision.next_execution == t("10:01")


def test_a_retry_claimed_ahead_starts_at_its_retry_time() -> None:
    due = make_due(
        next_execution=t("11:00"),
        retry_at=t("10:01:00"),
        retry_scheduled_time=t("10:00"),
        retry_attempt=2,
    )
    run = decide(due, t("10:01:00.010"), t("10:00:59.990")).run
    assert run is not None
    assert (run.scheduled_time, run.trigger, run.start_at) == (t("10:00"), "retry", t("10:01"))


@pytest.mark.parametrize("policy", ["coalesce", "skip"])
def test_a_backlog_longer_than_max_backlog_still_runs_the_latest_occurrence(
    policy: MisfireMode,
) -> None:
    """Down for longer than MAX_BACKLOG occurrences: what is recorded is bounded, but the
    run is still of the latest occurrence (0.5 s late, well within grace)."""
    spec = make_spec({"every": "1s", "timezone": "UTC"}, misfire=policy, grace=5)
    latest = t("10:00") + timedelta(seconds=MAX_BACKLOG + 200)
    decision = decide(make_due(spec, t("10:00")), latest + timedelta(seconds=0.5))
    assert decision.run is not None
    assert decision.run.scheduled_time == latest
    assert decision.next_execution == latest + timedelta(seconds=1)
    assert len(decision.records) <= MAX_BACKLOG + 1
    times = [r.scheduled_time for r in decision.records]
    assert all(a < b for a, b in itertools.pairwise(times))


# --- overlap ---------------------------------------------------------------------------


# (overlap, running, expected outcome, replace_running)
OVERLAP_CASES = [
    ("forbid", 1, "skipped", False),
    ("forbid", 0, "running", False),
    ("allow", 1, "running", False),
    ("allow", 3, "running", False),
    ("replace", 1, "running", True),
    ("replace", 0, "running", False),
]


@pytest.mark.parametrize(("overlap", "running", "outcome", "replace_running"), OVERLAP_CASES)
def test_overlap(overlap: Overlap, running: int, outcome: str, replace_running: bool) -> None:
    spec = make_spec(overlap=overlap)
    decision = decide(make_due(spec, t("10:00"), running=running), t("10:00:01"))
    assert rows(decision) == [(t("10:00"), outcome, "schedule", 1)]
    assert decision.next_execution == t("10:01")
    assert decision.replace_running is replace_running
    assert decision.clear_retry is (outcome == "running")


def test_forbidden_overlap_is_recorded_with_its_reason() -> None:
    decision = decide(make_due(next_execution=t("10:00"), running=1), t("10:00:01"))
    (record,) = decision.records
    assert record.outcome == "skipped"
    assert record.error == STILL_RUNNING
    assert "overlap" in STILL_RUNNING
    assert decision.run is None


def test_forbidden_overlap_after_a_misfire_still_records_every_occurrence() -> None:
    decision = decide(make_due(next_execution=t("10:00"), running=1), t("10:02:10"))
    assert rows(decision) == [
        (t("10:00"), "coalesced", "schedule", 1),
        (t("10:01"), "coalesced", "schedule", 1),
        (t("10:02"), "skipped", "schedule", 1),
    ]
    assert decision.next_execution == t("10:03")
    assert decision.run is None


# --- manual triggers and retries ---------------------------------------------------------


def test_manual_trigger_runs_and_leaves_the_schedule_alone() -> None:
    event = make_due(next_execution=t("10:05"), triggered_at=t("10:03:12"))
    decision = decide(event, t("10:03:12.5"))
    assert rows(decision) == [(t("10:03:12"), "running", "manual", 1)]
    assert decision.next_execution == t("10:05")
    assert flags(decision) == ("active", True, True, False)


def test_manual_trigger_goes_first_and_a_due_occurrence_waits_for_the_next_claim() -> None:
    event = make_due(next_execution=t("10:00"), triggered_at=t("10:00:30"))
    decision = decide(event, t("10:00:31"))
    assert rows(decision) == [(t("10:00:30"), "running", "manual", 1)]
    assert decision.next_execution == t("10:00")  # untouched, still due


def test_manual_trigger_while_running_under_forbid_is_skipped_and_consumed() -> None:
    event = make_due(next_execution=t("10:05"), triggered_at=t("10:03"), running=1)
    decision = decide(event, t("10:03:01"))
    assert rows(decision) == [(t("10:03"), "skipped", "manual", 1)]
    assert decision.next_execution == t("10:05")
    assert flags(decision) == ("active", False, True, False)


def test_due_retry_runs_with_its_attempt_and_scheduled_time() -> None:
    event = make_due(
        next_execution=t("10:30"),
        retry_at=t("10:05"),
        retry_scheduled_time=t("10:00"),
        retry_attempt=3,
    )
    decision = decide(event, t("10:05:01"))
    assert rows(decision) == [(t("10:00"), "running", "retry", 3)]
    assert decision.next_execution == t("10:30")
    assert flags(decision) == ("active", True, False, False)


def test_retry_not_yet_due_waits() -> None:
    event = make_due(
        next_execution=t("10:30"),
        retry_at=t("10:05"),
        retry_scheduled_time=t("10:00"),
        retry_attempt=2,
    )
    decision = decide(event, t("10:04:59"))
    assert decision == Decision((), t("10:30"))


def test_a_scheduled_run_supersedes_a_pending_retry() -> None:
    event = make_due(
        next_execution=t("10:01"),
        retry_at=t("10:05"),
        retry_scheduled_time=t("10:00"),
        retry_attempt=2,
    )
    decision = decide(event, t("10:01:00.5"))
    assert rows(decision) == [(t("10:01"), "running", "schedule", 1)]
    assert decision.clear_retry is True
    assert decision.next_execution == t("10:02")


def test_a_skipped_occurrence_keeps_a_pending_retry() -> None:
    event = make_due(
        next_execution=t("10:01"),
        running=1,
        retry_at=t("10:05"),
        retry_scheduled_time=t("10:00"),
        retry_attempt=2,
    )
    decision = decide(event, t("10:01:00.5"))
    assert rows(decision) == [(t("10:01"), "skipped", "schedule", 1)]
    assert decision.clear_retry is False


# --- limits and one-time events --------------------------------------------------------


@pytest.mark.parametrize(
    ("execution_count", "running", "outcome", "next_execution"),
    [
        (1, 0, "running", t("10:01")),  # second of three runs
        (2, 0, "running", None),  # the run that reaches the limit ends the schedule
        (2, 1, "skipped", t("10:01")),  # a skipped occurrence does not count
    ],
)
def test_max_executions(
    execution_count: int, running: int, outcome: str, next_execution: datetime | None
) -> None:
    spec = make_spec(max_executions=3)
    event = make_due(spec, t("10:00"), execution_count=execution_count, running=running)
    decision = decide(event, t("10:00:01"))
    assert rows(decision) == [(t("10:00"), outcome, "schedule", 1)]
    assert decision.next_execution == next_execution
    assert decision.status == "active"  # the run in progress settles the rest


@pytest.mark.parametrize(
    "fields",
    [
        {"triggered_at": t("10:00:30")},
        {"retry_at": t("10:00:30"), "retry_scheduled_time": t("09:59"), "retry_attempt": 2},
    ],
)
def test_retries_and_manual_runs_do_not_use_up_max_executions(fields: dict[str, Any]) -> None:
    spec = make_spec(max_executions=3)
    event = make_due(spec, t("10:01"), execution_count=2, **fields)
    decision = decide(event, t("10:00:31"))
    assert decision.run is not None
    assert decision.next_execution == t("10:01")  # the third occurrence is still to come


def test_one_time_event_runs_and_stays_active_until_its_run_settles() -> None:
    spec = make_spec(ONCE)
    decision = decide(make_due(spec, t("10:00")), t("10:00:05"))
    assert rows(decision) == [(t("10:00"), "running", "schedule", 1)]
    assert decision.next_execution is None
    assert flags(decision) == RUN


def test_one_time_event_missed_under_skip_has_nothing_left() -> None:
    spec = make_spec(ONCE, misfire="skip", grace=30)
    decision = decide(make_due(spec, t("10:00")), t("10:10"))
    assert rows(decision) == [(t("10:00"), "missed", "schedule", 1)]
    assert decision.next_execution is None
    assert decision.status == "completed"
    assert decision.run is None


# --- settle ----------------------------------------------------------------------------
# settle() says what follows a run: a retry, or else the status the event takes if nothing
# more is to come (the store applies it only then, so a recurring event with a next
# occurrence or a one-time event with a pending retry keeps its status).

ENDED = t("10:00:42")
RETRY_TWICE = RetryPolicy(attempts=2, delay=60, backoff=2)
NO_RETRY = RetryPolicy(attempts=0)
KINDS = {"once": ONCE, "recurring": EVERY_MINUTE}


def after(seconds: float) -> datetime:
    return ENDED + timedelta(seconds=seconds)


# (kind, retry, outcome, attempt, expected (failed, retry_at, retry_attempt, final_status))
SETTLE_CASES = [
    ("once", RETRY_TWICE, "succeeded", 1, (False, None, None, "completed")),
    ("once", RETRY_TWICE, "succeeded", 3, (False, None, None, "completed")),
    ("once", RETRY_TWICE, "failed", 1, (True, after(60), 2, None)),
    ("once", RETRY_TWICE, "failed", 2, (True, after(120), 3, None)),
    ("once", RETRY_TWICE, "failed", 3, (True, None, None, "failed")),
    ("once", NO_RETRY, "failed", 1, (True, None, None, "failed")),
    ("once", RETRY_TWICE, "timed_out", 1, (True, after(60), 2, None)),
    ("once", RETRY_TWICE, "interrupted", 2, (True, after(120), 3, None)),
    ("once", NO_RETRY, "timed_out", 1, (True, None, None, "failed")),
    ("once", NO_RETRY, "interrupted", 1, (True, None, None, "failed")),
    ("recurring", RETRY_TWICE, "succeeded", 1, (False, None, None, "completed")),
    ("recurring", RETRY_TWICE, "failed", 1, (True, after(60), 2, None)),
    ("recurring", RETRY_TWICE, "timed_out", 2, (True, after(120), 3, None)),
    # a recurring event is never "failed": it ends "completed" once nothing is to come
    ("recurring", RETRY_TWICE, "failed", 3, (True, None, None, "completed")),
    ("recurring", NO_RETRY, "timed_out", 1, (True, None, None, "completed")),
    ("recurring", NO_RETRY, "interrupted", 1, (True, None, None, "completed")),
]


@pytest.mark.parametrize(("kind", "retry", "outcome", "attempt", "expected"), SETTLE_CASES)
def test_settle(
    kind: str,
    retry: RetryPolicy,
    outcome: JobOutcome,
    attempt: int,
    expected: tuple[bool, datetime | None, int | None, str | None],
) -> None:
    result = settle(make_spec(KINDS[kind], retry=retry), outcome, attempt, ENDED)
    failed, retry_at, retry_attempt, final_status = expected
    assert (result.failed, result.retry_at, result.retry_attempt) == (
        failed,
        retry_at,
        retry_attempt,
    )
    if final_status is not None:  # only meaningful when no retry follows
        assert result.final_status == final_status


def test_one_time_event_over_its_whole_life() -> None:
    """Decide, fail, retry twice, fail: three runs of one occurrence, then ``failed``."""
    spec = make_spec(ONCE, retry=RETRY_TWICE)
    event, now = make_due(spec, t("10:00")), t("10:00:01")
    attempts: list[Row] = []
    for _ in range(5):
        decision = decide(event, now)
        attempts.extend(rows(decision))
        assert decision.run is not None
        now += timedelta(seconds=10)
        end = settle(spec, "failed", decision.run.attempt, now)
        if end.retry_at is None:
            assert end.final_status == "failed"
            break
        now = end.retry_at
        event = replace(
            event,
            next_execution=decision.next_execution,
            retry_at=end.retry_at,
            retry_attempt=end.retry_attempt,
            retry_scheduled_time=decision.run.scheduled_time,
        )
    assert attempts == [
        (t("10:00"), "running", "schedule", 1),
        (t("10:00"), "running", "retry", 2),
        (t("10:00"), "running", "retry", 3),
    ]


# --- properties ------------------------------------------------------------------------

START = datetime(2027, 1, 1, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    seconds=st.integers(min_value=1, max_value=7200),
    occurrences_down=st.integers(min_value=0, max_value=40),
    extra=st.floats(min_value=0, max_value=0.999),
    policy=st.sampled_from(["coalesce", "skip", "all"]),
    grace=st.floats(min_value=0, max_value=10_000),
    overlap=st.sampled_from(["forbid", "allow", "replace"]),
    running=st.integers(min_value=0, max_value=2),
    jitter=st.integers(min_value=0, max_value=60),
    offset=st.integers(min_value=0, max_value=86_400),
)
def test_every_due_occurrence_is_recorded_exactly_once(
    seconds: int,
    occurrences_down: int,
    extra: float,
    policy: MisfireMode,
    grace: float,
    overlap: Overlap,
    running: int,
    jitter: int,
    offset: int,
) -> None:
    spec = make_spec(
        {"every": f"{seconds}s", "timezone": "UTC"},
        misfire=policy,
        grace=grace,
        overlap=overlap,
        jitter=jitter,
    )
    first = occurrences.next_fire(spec, START + timedelta(seconds=offset))
    assert first is not None
    period = timedelta(seconds=seconds)
    # Down for ``occurrences_down`` periods and a bit: that many occurrences, plus ``first``.
    now = first + occurrences_down * period + extra * period
    expected = [first + i * period for i in range(occurrences_down + 1)]

    event, recorded, claims = make_due(spec, first, running=running), [], 0
    while claims <= len(expected):
        decision = decide(event, now)
        if not decision.records:
            break
        claims += 1
        times = [r.scheduled_time for r in decision.records]
        assert decision.next_execution is not None
        assert decision.next_execution > max(times)
        assert sum(r.outcome == "running" for r in decision.records) <= 1
        recorded.extend(times)
        event = replace(event, next_execution=decision.next_execution)

    assert recorded == expected  # each once, none lost, in order
    assert all(a < b for a, b in itertools.pairwise(recorded))
    assert event.next_execution == first + len(expected) * period
    assert event.next_execution > now
    assert claims == (len(expected) if policy == "all" else 1)
