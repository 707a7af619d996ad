"""Functions the loop tests schedule. Each records its calls; gates make runs wait."""

from __future__ import annotations

import asyncio
from typing import Any

from runner.jobs import JobContext

CALLS: list[tuple[str, int, dict[str, Any]]] = []
GATES: dict[str, asyncio.Event] = {}


async def record(context: JobContext, **parameters: Any) -> dict[str, Any]:
    """Succeeds at once, returning its parameters."""
    CALLS.append((context.event, context.attempt, parameters))
    return {"ok": True, **parameters}


async def wait_for_gate(context: JobContext) -> str:
    """Runs until the test opens the event's gate (or the run is cancelled)."""
    CALLS.append((context.event, context.attempt, {}))
    gate = GATES.setdefault(context.event, asyncio.Event())
    await gate.wait()
    return "released"


def fail(context: JobContext) -> None:
    """Always fails (a sync function, run in a thread)."""
    CALLS.append((context.event, context.attempt, {}))
    raise RuntimeError(f"boom on attempt {context.attempt}")
