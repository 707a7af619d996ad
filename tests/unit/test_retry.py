"""The retry contract: ``attempts`` counts the retries after the first run, and the n-th
retry waits ``delay * backoff**(n-1)`` seconds, capped by ``max_delay``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runner.retry import next_retry, retry_delay
from runner.specs import RetryPolicy

FAILED_AT = datetime(2027, 1, 1, 10, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    """An aware UTC instant from ``YYYY-MM-DDTHH:MM:SS[.ffffff]``."""
    return datetime.fromisoformat(text + "+00:00")


# (policy, the failed run's number, when the next run is due: None = no retry left)
NEXT_RETRY_CASES = [
    # attempts=2: runs 1 and 2 may be retried, run 3 is the last one.
    (RetryPolicy(attempts=2, delay=60, backoff=2), 1, "2027-01-01T10:01:00"),
    (RetryPolicy(attempts=2, delay=60, backoff=2), 2, "2027-01-01T10:02:00"),
    (RetryPolicy(attempts=2, delay=60, backoff=2), 3, None),
    # attempts=0: never retried.
    (RetryPolicy(attempts=0, delay=60, backoff=2), 1, None),
    # the defaults: 3 retries, 300 s, doubling
    (RetryPolicy(), 1, "2027-01-01T10:05:00"),
    (RetryPolicy(), 2, "2027-01-01T10:10:00"),
    (RetryPolicy(), 3, "2027-01-01T10:20:00"),
    (RetryPolicy(), 4, None),
    # max_delay caps each wait; the attempt count is unaffected.
    (RetryPolicy(attempts=5, delay=60, backoff=2, max_delay=200), 2, "2027-01-01T10:02:00"),
    (RetryPolicy(attempts=5, delay=60, backoff=2, max_delay=200), 3, "2027-01-01T10:03:20"),
    (RetryPolicy(attempts=5, delay=60, backoff=2, max_delay=200), 5, "2027-01-01T10:03:20"),
    (RetryPolicy(attempts=5, delay=60, backoff=2, max_delay=200), 6, None),
    # backoff 1 is a constant delay; fractional seconds are kept exactly.
    (RetryPolicy(attempts=3, delay=10, backoff=1), 3, "2027-01-01T10:00:10"),
    (RetryPolicy(attempts=3, delay=1.5, backoff=3), 1, "2027-01-01T10:00:01.500000"),
    (RetryPolicy(attempts=3, delay=1.5, backoff=3), 3, "2027-01-01T10:00:13.500000"),
    # delay 0: retried at once.
    (RetryPolicy(attempts=1, delay=0, backoff=2), 1, "2027-01-01T10:00:00"),
]


@pytest.mark.parametrize(("policy", "attempt", "expected"), NEXT_RETRY_CASES)
def test_next_retry(policy: RetryPolicy, attempt: int, expected: str | None) -> None:
    due = next_retry(policy, attempt, FAILED_AT)
    assert due == (None if expected is None else utc(expected))
    if due is not None:
        assert due.tzinfo is UTC


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (RetryPolicy(attempts=0), []),
        (RetryPolicy(attempts=1, delay=30), [30]),
        (RetryPolicy(attempts=4, delay=30, backoff=2), [30, 60, 120, 240]),
        (RetryPolicy(attempts=4, delay=30, backoff=3, max_delay=100), [30, 90, 100, 100]),
        (RetryPolicy(attempts=3, delay=5, backoff=1.5), [5, 7.5, 11.25]),
    ],
)
def test_retry_delays_in_order_until_exhausted(policy: RetryPolicy, delays: list[float]) -> None:
    got: list[float] = []
    attempt = 1
    while (delay := retry_delay(policy, attempt)) is not None and attempt <= 1000:
        got.append(delay)
        attempt += 1
    assert got == pytest.approx(delays)


@pytest.mark.parametrize("attempts", [0, 1, 2, 3, 10])
def test_attempts_bounds_the_number_of_runs(attempts: int) -> None:
    """A run that always fails is run exactly ``attempts + 1`` times."""
    policy = RetryPolicy(attempts=attempts, delay=60, backoff=2)
    runs, failed_at = 1, FAILED_AT
    while (due := next_retry(policy, runs, failed_at)) is not None:
        assert due > failed_at
        runs, failed_at = runs + 1, due + timedelta(seconds=1)
    assert runs == attempts + 1


def test_largest_configurable_policy_never_overflows() -> None:
    """The schema allows 100 retries with the default delay and doubling (no max_delay).

    Late retries wait longer than a datetime can hold; settling such a failure must still
    give an answer (here: a time no earlier than the previous retry), not raise.
    """
    policy = RetryPolicy(attempts=100, delay=300, backoff=2)
    previous = FAILED_AT
    for attempt in range(1, 101):
        due = next_retry(policy, attempt, FAILED_AT)
        assert due is not None
        assert due >= previous
        previous = due
    assert next_retry(policy, 101, FAILED_AT) is None
