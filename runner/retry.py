"""When a failed run is tried again. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from runner.specs import RetryPolicy

# The longest wait before a retry when max_delay allows more: a longer one is as good as
# never, and growing it further would overflow datetime arithmetic.
MAX_RETRY_DELAY = 365 * 86400.0


def retry_delay(policy: RetryPolicy, attempt: int) -> float | None:
    """Seconds to wait after run number ``attempt`` (1-based) failed, or None when none is left.

    ``policy.attempts`` counts retries after the first run, so ``attempts=2`` allows three
    runs. The n-th retry waits ``delay * backoff**(n-1)``, capped by ``max_delay``.
    """
    if attempt > policy.attempts:
        return None
    cap = MAX_RETRY_DELAY if policy.max_delay is None else min(policy.max_delay, MAX_RETRY_DELAY)
    try:
        delay = policy.delay * policy.backoff ** (attempt - 1)
    except OverflowError:
        return cap
    return min(delay, cap)


def next_retry(policy: RetryPolicy, attempt: int, failed_at: datetime) -> datetime | None:
    """When run number ``attempt + 1`` is due, or None when retries are exhausted."""
    delay = retry_delay(policy, attempt)
    return None if delay is None else failed_at + timedelta(seconds=delay)
