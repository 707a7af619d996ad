"""The module design's five examples through the HTTP API of a real ``runner run``, then
its three tables read with plain SQL (sqlite3) by the design's column names.

The job functions are named as the design names them, through ``settings.functions``;
``settings.api.allowed_functions`` lists those names. Runs are asked for by event id.
The examples are written as the design's API has them (SPEC.md does not quote them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.result import Result
from runner.service import SchedulerService
from tests.e2e.api_helpers import PREFIX, ApiServer, auth, data_of, running_server
from tests.e2e.helpers import wait_for

EVENTS = f"{PREFIX}/events"
JOBS = "designjobs"
JOBS_SOURCE = """
def backup(context, backup_type):
    return {"backup": backup_type, "trace": context.trace_session_id}


def maintain():
    return "maintained"


def report(format):
    raise ConnectionError("mail server unreachable")


def optimize():
    return "optimized"
"""
FUNCTIONS = {
    "backup_database": f"{JOBS}:backup",
    "run_maintenance": f"{JOBS}:maintain",
    "generate_weekly_report": f"{JOBS}:report",
    "optimize_database": f"{JOBS}:optimize",
}

Server = tuple[ApiServer, httpx.Client]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cwd = tmp_path_factory.mktemp("design-api")
    (cwd / f"{JOBS}.py").write_text(JOBS_SOURCE)
    (cwd / "logs").mkdir()
    with running_server(
        cwd,
        allowed=list(FUNCTIONS),
        functions=FUNCTIONS,
        retry_failed_events=False,
        agents={"allow_cleanup": True},  # remote callers may register cleanup policies
    ) as started:
        yield started


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    return data_of(client.post(path, json=body, headers=auth()), 201)


def query(server: ApiServer, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(server.cwd / "runner.db")) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def ended_runs(client: httpx.Client, event_id: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = data_of(client.get(f"{EVENTS}/{event_id}/executions"))
    return [r for r in runs if r["end_time"] is not None]


def test_the_designs_examples_through_the_api(api: Server) -> None:
    server, client = api
    logs = server.cwd / "logs"
    created = [
        post(  # a backup in an hour (one-time)
            client,
            EVENTS,
            {
                "name": "database_backup",
                "function_name": "backup_database",
                "next_execution": in_an_hour(),
                "parameters": {"backup_type": "full"},
                "module_id": "core.database",
            },
        ),
        post(  # daily maintenance
            client,
            EVENTS,
            {
                "name": "daily_maintenance",
                "function_name": "run_maintenance",
                "recurring": True,
                "interval_type": "days",
                "interval_value": 1,
                "module_id": "core.maintenance",
            },
        ),
        post(  # the weekly report, Mondays at 9:00
            client,
            EVENTS,
            {
                "name": "weekly_report",
                "function_name": "generate_weekly_report",
                "recurring": True,
                "interval_type": "cron",
                "parameters": {"_cron_expression": "0 9 * * 1", "format": "pdf"},
                "module_id": "reports",
            },
        ),
        post(  # weekly optimisation
            client,
            EVENTS,
            {
                "name": "weekly_optimization",
                "function_name": "optimize_database",
                "recurring": True,
                "interval_type": "weeks",
                "interval_value": 1,
                "module_id": "core.database",
            },
        ),
    ]
    policy = post(  # log cleanup
        client,
        f"{PREFIX}/cleanup",
        {
            "directory": str(logs),
            "pattern": "*.log",
            "retention_days": 7,
            "max_files": 100,
            "max_size_mb": 500,
            "priority": 1,
            "module_id": "core.logging",
        },
    )
    ids = [event["event_id"] for event in created]
    assert len(set(ids)) == 4
    assert created[2]["schedule"]["cron"] == "0 9 * * 1"
    assert created[2]["parameters"] == {"format": "pdf"}

    for event_id in ids:  # by id, where the API takes a name
        data_of(client.post(f"{EVENTS}/{event_id}/run", headers=auth()))
    for event_id in ids:
        wait_for(partial(ended_runs, client, event_id), 20, what=f"a run of event {event_id}")
    (old := logs / "old.log").write_text("x")
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).timestamp()
    os.utime(old, (ten_days_ago, ten_days_ago))
    data_of(client.post(f"{PREFIX}/cleanup/run", headers=auth()))
    assert not old.exists()

    histories = {i: ended_runs(client, i) for i in ids}
    assert all(isinstance(h[0]["execution_id"], int) for h in histories.values())
    backup_run = histories[ids[0]][0]
    assert backup_run["result"]["trace"] == backup_run["trace_session_id"]

    assert query(server, "SELECT name, status, last_error FROM scheduler_events ORDER BY id") == [
        ("database_backup", "active", None),
        ("daily_maintenance", "active", None),
        ("weekly_report", "active", "ConnectionError: mail server unreachable"),
        ("weekly_optimization", "active", None),
    ]
    assert query(
        server,
        "SELECT name, function_name, interval_type, interval_value, module_id"
        " FROM scheduler_events ORDER BY id",
    )[1:] == [
        ("daily_maintenance", "run_maintenance", "days", "1", "core.maintenance"),
        ("weekly_report", "generate_weekly_report", "cron", "0 9 * * 1", "reports"),
        ("weekly_optimization", "optimize_database", "weeks", "1", "core.database"),
    ]
    runs = query(
        server,
        "SELECT x.id, e.name, x.start_time, x.end_time, x.success, x.trace_session_id"
        " FROM scheduler_executions x JOIN scheduler_events e ON e.id = x.event_id"
        " ORDER BY x.start_time",
    )
    assert sorted((r[1], r[4]) for r in runs) == [
        ("daily_maintenance", 1),
        ("database_backup", 1),
        ("weekly_optimization", 1),
        ("weekly_report", 0),
    ]
    assert all(r[2] <= r[3] for r in runs)
    assert len({r[5] for r in runs}) == 4
    assert query(
        server,
        "SELECT directory, pattern, retention_days, max_files, max_size_mb, priority,"
        " module_id, last_run IS NOT NULL FROM scheduler_cleanup_configs",
    ) == [(str(logs), "*.log", 7.0, 100, 500.0, 1, "core.logging", 1)]
    assert policy["directory"] == str(logs)


def test_an_event_in_the_configs_shape_keeps_its_policies(api: Server) -> None:
    server, client = api
    event = post(
        client,
        EVENTS,
        {
            "name": "copied-from-yaml",
            "function": "optimize_database",
            "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"},
            "retry": {"attempts": 5, "delay": 60, "backoff": 2, "max_delay": 3600},
            "timeout": 900,
            "overlap": "replace",
            "misfire": {"policy": "skip", "grace": 60},
            "jitter": 30,
        },
    )
    assert (event["source"], event["function_name"]) == ("user", "optimize_database")
    assert data_of(client.get(f"{EVENTS}/{event['event_id']}"))["name"] == "copied-from-yaml"
    ((spec,),) = query(server, "SELECT spec FROM scheduler_events WHERE name = 'copied-from-yaml'")
    stored = json.loads(spec)
    assert stored["retry"] == {"attempts": 5, "delay": 60, "backoff": 2, "max_delay": 3600}
    assert (stored["timeout"], stored["overlap"], stored["jitter"]) == (900, "replace", 30)
    assert stored["misfire"] == {"policy": "skip", "grace": 60}


HOURLY = {"function": "optimize_database", "schedule": {"every": "1h"}}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({**HOURLY, "name": "c1", "function": "os:system"}, 403, "allowed"),
        ({**HOURLY, "name": "c2", "command": "x"}, 422, "command"),
        ({**HOURLY, "name": "c3", "retry": {"attempts": -1}}, 422, "retry"),
        ({**HOURLY, "name": "c4", "schedule": {"every": "soon"}}, 422, "every"),
    ],
)
def test_the_configs_shape_is_checked_like_a_config_file(
    api: Server, body: dict[str, Any], status: int, words: str
) -> None:
    _, client = api
    response = client.post(EVENTS, json=body, headers=auth())
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_the_openapi_document_shows_both_shapes(api: Server) -> None:
    _, client = api
    document = client.get("/openapi.json").json()
    body = document["paths"][EVENTS]["post"]["requestBody"]["content"]["application/json"]
    shapes = body["schema"]["oneOf"]
    titles = set()
    for shape in shapes:
        ref = shape["$ref"].removeprefix("#/components/schemas/")
        titles.add(ref)
        schema = document["components"]["schemas"][ref]
        if ref == "ConfigEvent":
            assert {"retry", "timeout", "overlap", "misfire", "jitter", "schedule"} <= set(
                schema["properties"]
            )
        else:
            assert {"function_name", "interval_type", "interval_value"} <= set(schema["properties"])
    assert titles == {"DesignEvent", "ConfigEvent"}


def test_an_error_has_the_same_code_in_the_api_the_cli_and_the_library(api: Server) -> None:
    server, client = api
    answer = client.post(f"{PREFIX}/cleanup/run", json={"policies": ["nope"]}, headers=auth())
    assert answer.status_code == 404
    cli = subprocess.run(
        [sys.executable, "-m", "runner", "cleanup", "--policy", "nope", "--json"],
        cwd=server.cwd,
        env=server.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1, cli.stderr
    library = asyncio.run(_library_cleanup(server.cwd / "runner.db", "nope"))
    bodies = [answer.json(), json.loads(cli.stdout), library.to_json()]
    assert [b["error"]["code"] for b in bodies] == ["not_found"] * 3
    assert all(b == {"success": False, "error": b["error"]} for b in bodies)
    assert all("nope" in b["error"]["message"] for b in bodies)


async def _library_cleanup(database: Path, policy: str) -> Result[Any]:
    service = await SchedulerService.open(f"sqlite:///{database}")
    try:
        return await service.run_cleanup(policies=[policy])
    finally:
        await service.shutdown()
