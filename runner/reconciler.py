"""Config → database: plan the difference and apply it, all or nothing."""

from __future__ import annotations

from datetime import datetime

from runner.errors import Conflict
from runner.plan import Plan, diff
from runner.specs import Config
from runner.store.sql import Store

EMPTY_REFUSAL = (
    "the config declares no events and no cleanup policies, but the database holds some "
    "from an earlier config; refusing to delete them all (a truncated file or a bad mount?). "
    "Run `runner apply --allow-empty` if that is the intent."
)


async def plan(store: Store, config: Config, allow_empty: bool = False) -> Plan:
    """What applying ``config`` would change."""
    stored_events, stored_cleanups = await store.stored_declarations()
    return diff(config, stored_events, stored_cleanups, allow_empty)


async def apply(store: Store, config: Config, now: datetime, allow_empty: bool = False) -> Plan:
    """Apply ``config`` in one transaction and return the plan carried out.

    Raises :class:`Conflict`, applying nothing, when the config takes the name of a user
    event or would empty a database that holds config declarations. Applying the same
    config twice writes nothing the second time.
    """
    result = await plan(store, config, allow_empty)
    if result.conflicts:
        raise Conflict("; ".join(result.conflicts))
    if result.refused_empty:
        raise Conflict(EMPTY_REFUSAL)
    state = await store.config_state()
    if result.empty and state.get("revision") == config.revision and not state.get("error"):
        return result
    await store.apply(config, result, now)
    return result
