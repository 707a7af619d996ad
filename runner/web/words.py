"""Schedules and times as a person reads them. Pure.

Cron expressions are put in words by cron-descriptor (24-hour clock); ``every`` and ``at``
are short enough to say here. Times are shown in the schedule's zone and in UTC, since a
reader thinks in the first and the logs speak the second.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cron_descriptor import ExpressionDescriptor, Options

from runner import schedules


def schedule(spec: Mapping[str, Any]) -> str:
    """``spec`` (a normalised schedule mapping) in words, naming its zone."""
    zone = str(spec.get("timezone") or "UTC")
    if "cron" in spec:
        return f"{_cron(str(spec['cron']))} ({zone})"
    if "every" in spec:
        amount, unit = schedules.parse_every(spec["every"])
        period = unit.removesuffix("s") if amount == 1 else f"{amount} {unit}"
        start = f", from {spec['start']}" if spec.get("start") else ""
        return f"Every {period}{start} ({zone})"
    return f"Once, at {spec['at']} ({zone})"


def _cron(expression: str) -> str:
    """The expression in words; the expression itself if cron-descriptor cannot say it
    (a page must not fail over one schedule's wording)."""
    options = Options()
    options.use_24hour_time_format = True
    try:
        fields = " ".join(schedules.cron_fields(expression))
        described: str = ExpressionDescriptor(fields, options).get_description()
    except Exception:
        return f"Cron {expression}"
    return described


def zone_of(spec: Mapping[str, Any]) -> ZoneInfo:
    """The zone a normalised schedule mapping is read in."""
    return ZoneInfo(str(spec.get("timezone") or "UTC"))


def local(t: datetime, zone: ZoneInfo) -> str:
    """``t`` on the wall clock of ``zone``, with the zone's abbreviation (CET, EST, ...)."""
    return t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def utc(t: datetime) -> str:
    """``t`` in UTC, to the second."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """A duration such as ``0.42 s``, ``3 min 05 s`` or ``2 h 10 min``; empty for None."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def count(number: float, noun: str) -> str:
    """``1 day``, ``1.5 days``, ``30 days``."""
    return f"{number:g} {noun}" if number == 1 else f"{number:g} {noun}s"


def size(count: int) -> str:
    """A byte count in binary units (``512 B``, ``1.5 MiB``)."""
    if count < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
