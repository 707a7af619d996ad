"""Specs' canonical JSON and hashes: what the database holds and compares stays the same
across versions, so upgrading runner does not make every event of a config an update."""

from __future__ import annotations

from runner.specs import CommandJob, EventSpec, FunctionJob, MisfirePolicy, RetryPolicy

BACKUP = EventSpec(
    "backup",
    {"cron": "15 2 * * *", "timezone": "Europe/Berlin"},
    CommandJob(("pg_dump", "-f", "/b/x.sql"), {"PGHOST": "db"}, "/srv", False),
    description="Back up",
    module_id="team.db",
    timeout=900,
    retry=RetryPolicy(5, 60, 2, 3600),
    misfire=MisfirePolicy("coalesce", 3600),
)
REFRESH = EventSpec(
    "refresh",
    {"every": {"minutes": 10}, "timezone": "UTC"},
    FunctionJob("app.tasks:refresh", {"shard": 3, "tags": ("a", "b"), "n": {"k": [1, 2.5, None]}}),
    timeout=None,
    overlap="allow",
    misfire=MisfirePolicy("skip"),
    max_executions=7,
    enabled=False,
    jitter=30,
)


def test_the_canonical_json_of_a_command_event() -> None:
    assert BACKUP.to_json() == {
        "name": "backup",
        "schedule": {"cron": "15 2 * * *", "timezone": "Europe/Berlin"},
        "job": {
            "kind": "command",
            "argv": ["pg_dump", "-f", "/b/x.sql"],
            "env": {"PGHOST": "db"},
            "cwd": "/srv",
            "shell": False,
        },
        "description": "Back up",
        "module_id": "team.db",
        "timeout": 900,
        "retry": {"attempts": 5, "delay": 60, "backoff": 2, "max_delay": 3600},
        "overlap": "forbid",
        "misfire": {"policy": "coalesce", "grace": 3600},
        "max_executions": None,
        "enabled": True,
        "jitter": 0,
    }


def test_the_canonical_json_of_a_function_event_has_plain_lists_and_dicts() -> None:
    data = REFRESH.to_json()
    assert data["job"] == {
        "kind": "function",
        "function": "app.tasks:refresh",
        "parameters": {"shard": 3, "tags": ["a", "b"], "n": {"k": [1, 2.5, None]}},
    }
    assert data["schedule"] == {"every": {"minutes": 10}, "timezone": "UTC"}
    assert EventSpec.from_json(BACKUP.to_json()) == BACKUP


def test_hashes_are_those_earlier_versions_stored() -> None:
    assert BACKUP.spec_hash == "46d52e0173a928170ab11c50b60abc1db55ffcaeafd5fce3e2040a8ffa6344bb"
    assert BACKUP.schedule_hash == (
        "38736f1fcdea9339cc91c83ddb680a8139cad47b97a0236c41a98252c882334d"
    )
    assert REFRESH.spec_hash == "8902349d3db51c548dec0ba860bda22e321c4c87230717af260e2163f943cebc"
