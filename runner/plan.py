"""Reconcile planning: what a config asks for against what the database holds. Pure.

The plan names each create, update and delete, the values an update changes (old and
new, down to the nested field), and whether it moves the schedule (and so resets the next
fire time) or leaves runtime state alone; :func:`with_fire_times` adds the next fire
times of what it schedules anew. An event that leaves the config is retired, not erased
(its history stays until retention); declared again, it is created anew on the same row,
history and all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from runner import occurrences
from runner.specs import CleanupSpec, Config, EventSpec

Action = Literal["create", "update", "delete"]
Kind = Literal["event", "cleanup"]


@dataclass(frozen=True)
class Stored:
    """What the database holds for one named event or policy."""

    name: str
    source: str  # "config" or "user"
    spec: Mapping[str, Any]
    spec_hash: str
    schedule_hash: str = ""
    retired: bool = False  # an event that left the config; its row keeps its history


@dataclass(frozen=True)
class FieldChange:
    """One value an update changes: ``field`` is a dotted path (``schedule.every``); an
    absent side is None."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """One step of a plan. ``fields`` lists the top-level fields an update changes,
    ``values`` each changed value; ``fires`` the next fire times of an event it creates or
    reschedules (filled in by :func:`with_fire_times`)."""

    action: Action
    kind: Kind
    name: str
    fields: tuple[str, ...] = ()
    reschedule: bool = False
    revive: bool = False  # a create that brings a retired event back, with its history
    values: tuple[FieldChange, ...] = ()
    fires: tuple[datetime, ...] = ()

    def render(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        detail = f": {', '.join(self.fields)}" if self.fields else ""
        if self.revive:
            detail = " (again, with its history)"
        return f"{sign} {self.action} {self.kind} {self.name}{detail}"


@dataclass(frozen=True)
class Plan:
    """The changes reconcile would make, and what stops it from making them."""

    changes: tuple[Change, ...] = ()
    conflicts: tuple[str, ...] = field(default_factory=tuple)
    refused_empty: bool = False

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        if self.empty:
            return "No changes: the database matches the config."
        parts = (f"{self.count(a)} to {a}" for a in ("create", "update", "delete"))
        return "Plan: " + ", ".join(parts) + "."


def diff(
    config: Config,
    events: Mapping[str, Stored],
    cleanups: Mapping[str, Stored],
    allow_empty: bool = False,
) -> Plan:
    """Compare ``config`` with the stored events and policies of both sources.

    User-owned rows are never planned for change; a config declaration that takes a
    user row's name is a conflict. A config that declares nothing while the database
    holds config rows is refused unless ``allow_empty`` (deleting all takes intent).
    """
    conflicts = [
        f"{kind} '{name}' already exists as a user {kind} (created through the API or library)"
        for kind, specs, stored in (
            ("event", config.events, events),
            ("cleanup", config.cleanups, cleanups),
        )
        for name in (s.name for s in specs)
        if name in stored and stored[name].source != "config"
    ]
    changes = [
        *_diff_kind("event", config.events, events),
        *_diff_kind("cleanup", config.cleanups, cleanups),
    ]
    has_config_rows = any(
        s.source == "config" and not s.retired for s in [*events.values(), *cleanups.values()]
    )
    refused = config.empty and has_config_rows and not allow_empty
    return Plan(tuple(changes), tuple(conflicts), refused)


def _diff_kind(
    kind: Kind, specs: Iterable[EventSpec | CleanupSpec], stored: Mapping[str, Stored]
) -> Iterable[Change]:
    declared = set()
    for spec in specs:
        declared.add(spec.name)
        current = stored.get(spec.name)
        if current is None or current.retired:
            yield Change("create", kind, spec.name, revive=current is not None)
        elif current.source == "config" and current.spec_hash != spec.spec_hash:
            values = tuple(changed_values(current.spec, spec.to_json()))
            fields = tuple(sorted({v.field.split(".", 1)[0] for v in values}))
            moved = isinstance(spec, EventSpec) and spec.schedule_hash != current.schedule_hash
            yield Change("update", kind, spec.name, fields, reschedule=moved, values=values)
    for name in sorted(stored.keys() - declared):
        if stored[name].source == "config" and not stored[name].retired:
            yield Change("delete", kind, name)


def changed_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[FieldChange]:
    """Each value that differs, by dotted path, sorted; mappings are compared field by
    field, anything else (lists included) as a whole."""
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            for inner in changed_values(before, after):
                yield FieldChange(f"{key}.{inner.field}", inner.old, inner.new)
        else:
            yield FieldChange(key, before, after)


def with_fire_times(plan: Plan, config: Config, now: datetime, count: int = 3) -> Plan:
    """``plan`` with the next ``count`` fire times (after ``now``) of each event it
    creates or whose schedule it changes."""
    specs = {spec.name: spec for spec in config.events}

    def timed(change: Change) -> Change:
        scheduled = change.action == "create" or change.reschedule
        if change.kind != "event" or not scheduled or change.name not in specs:
            return change
        return replace(change, fires=tuple(_fires(specs[change.name], now, count)))

    return replace(plan, changes=tuple(timed(c) for c in plan.changes))


def _fires(spec: EventSpec, now: datetime, count: int) -> Iterator[datetime]:
    """Where the event starts once applied (as apply computes it), then what follows."""
    fire = occurrences.first_fire(spec, now)
    for _ in range(count):
        if fire is None:
            return
        yield fire
        fire = occurrences.next_fire(spec, fire)
