"""When a failed run is tried again. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from runner.specs import RetryPolicy


def retry_delay(policy: RetryPolicy, attempt: int) -> float | None:
    """Seconds to wait after run number ``attempt`` (1-based) failed, or None when none is left.

    ``policy.attempts`` counts retries after the first run, so ``attempts=2`` allows three
    runs. The n-th retry waits ``delay * backoff**(n-1)``, capped by ``max_delay``.
    """
    if attempt > policy.attempts:
        return None
    delay = policy.delay * policy.backoff ** (attempt - 1)
    return delay if policy.max_delay is None else min(delay, policy.max_delay)


def next_retry(policy: RetryPolicy, attempt: int, failed_at: datetime) -> datetime | None:
    """When run number ``attempt + 1`` is due, or None when retries are exhausted."""
    delay = retry_delay(policy, attempt)
    return None if delay is None else failed_at + timedelta(seconds=delay)
