"""The module design's arguments, as the config's declarations.

The design schedules with ``function_name``, ``next_execution``, ``recurring``,
``interval_type`` (``once``, ``cron``, or a unit: seconds, minutes … months) and
``interval_value``; a cron expression may also come as ``parameters["_cron_expression"]``.
The design's cleanups may come without a name. These pure functions turn them into the
mappings a config file would hold, so one JSON Schema and one set of checks validate
every event and policy, whichever way it was declared.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, get_args

from runner import schedules

UNITS: tuple[str, ...] = get_args(schedules.Unit)
CRON_PARAMETER = "_cron_expression"
# A stand-in schedule when the design's is wrong, so the other fields are still checked.
_PLACEHOLDER = {"every": "1m"}


def event_mapping(
    name: str,
    function_name: str | None,
    next_execution: datetime | str | None = None,
    recurring: bool = False,
    interval_type: str | None = None,
    interval_value: int | str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timezone: str | None = None,
    **fields: Any,
) -> tuple[dict[str, Any], list[str]]:
    """The config's event mapping for the design's arguments, and what is wrong with them.

    ``fields`` are config fields given beside them (``module_id``, ``retry``, ``timeout``,
    ``schedule``, ...), taken as they are; None values count as not given.
    """
    declared: dict[str, Any] = {"name": name}
    declared |= {k: v for k, v in fields.items() if v is not None}
    problems: list[str] = []
    if function_name is not None:
        if "function" in declared:
            problems.append("give function_name or function, not both")
        declared["function"] = function_name
    arguments = dict(parameters or {})
    cron = arguments.pop(CRON_PARAMETER, None)
    if "function" in declared or parameters is not None:
        declared["parameters"] = arguments
    when = (next_execution, interval_type, interval_value, cron, timezone)
    if "schedule" in declared:
        if any(v is not None for v in when) or recurring:
            problems.append(
                "give schedule or next_execution/recurring/interval_type/interval_value, not both"
            )
        return declared, problems
    if cron is not None and interval_value is not None and str(cron) != str(interval_value):
        problems.append(f"interval_value and parameters.{CRON_PARAMETER} differ")
    try:
        declared["schedule"] = schedule_mapping(
            next_execution,
            recurring,
            interval_type,
            interval_value if interval_value is not None else cron,
            timezone,
        )
    except ValueError as exc:
        problems.append(str(exc))
        declared["schedule"] = dict(_PLACEHOLDER)
    return declared, problems


def schedule_mapping(
    next_execution: datetime | str | None,
    recurring: bool,
    interval_type: str | None,
    interval_value: int | str | None,
    timezone: str | None,
) -> dict[str, Any]:
    """The design's scheduling arguments as a config ``schedule``. Raises ValueError."""
    start = next_execution.isoformat() if isinstance(next_execution, datetime) else next_execution
    zone = {"timezone": timezone} if timezone else {}
    if not recurring and interval_type in (None, "once"):
        if start is None:
            raise ValueError("a one-time event needs next_execution")
        return {"at": start, **zone}
    if interval_type == "cron":
        if interval_value is None:
            raise ValueError(
                f"interval_type cron needs the expression, as interval_value or "
                f"parameters.{CRON_PARAMETER}"
            )
        return {"cron": str(interval_value), **zone}
    kind = interval_type or ""
    unit = kind if kind.endswith("s") else f"{kind}s"
    if unit not in UNITS:
        units = ", ".join(UNITS)
        raise ValueError(f"interval_type is once, cron or one of {units}, not {interval_type!r}")
    if not isinstance(interval_value, int) or isinstance(interval_value, bool):
        raise ValueError(
            f"interval_value must be an integer number of {unit}, not {interval_value!r}"
        )
    return {"every": {unit: interval_value}, **({"start": start} if start else {}), **zone}


def cleanup_name(directory: str, pattern: str) -> str:
    """A stable name for a policy the design declared without one: readable, and unique
    per (directory, pattern), so registering the same cleanup again replaces it."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", f"{directory} {pattern}".lower()).strip("-._")
    digest = hashlib.sha256(f"{directory}\0{pattern}".encode()).hexdigest()[:8]
    return f"{slug[:80] or 'cleanup'}-{digest}"
