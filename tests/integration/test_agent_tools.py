"""The agent tool layer (:mod:`runner.agent_tools`) on a real service and SQLite file:
what each tool answers, what it refuses and why, and that the refusals follow the
service's current settings (a config reload changes them without a restart)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner import agent_tools
from runner.service import SchedulerService
from runner.specs import AgentSettings, ApiSettings, Settings
from tests.fakes import FakeClock

T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
RECORD = "tests.integration.sample_jobs:record"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SchedulerService]:
    settings = Settings(api=ApiSettings(allowed_functions=(RECORD,)))
    opened = await SchedulerService.open(
        f"sqlite:///{tmp_path / 'runner.db'}", settings, FakeClock(T0)
    )
    opened.protected_files = [str(tmp_path / "config" / "scheduler.yaml")]
    try:
        yield opened
    finally:
        await opened.shutdown()


async def answer(service: SchedulerService, tool: str, **arguments: Any) -> dict[str, Any]:
    return (await agent_tools.call(service, tool, arguments)).to_json()


def test_every_schema_is_valid_json_schema_and_names_its_tool_once() -> None:
    assert len(agent_tools.BY_NAME) == len(agent_tools.TOOLS) == 6
    for tool in agent_tools.TOOLS:
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False


async def test_schedule_task_answers_the_event_in_utc(service: SchedulerService) -> None:
    body = await answer(
        service,
        "schedule_task",
        name="report",
        function_name=RECORD,
        next_execution="2027-01-04T12:30:00",
        timezone="Europe/Berlin",
    )
    assert body["success"] is True, body
    assert body["data"]["next_execution"] == "2027-01-04T11:30:00+00:00"
    assert body["data"]["source"] == "user"


async def test_bad_input_names_every_field(service: SchedulerService) -> None:
    body = await answer(
        service, "schedule_task", name="Bad Name", function_name=RECORD, max_executions=0
    )
    assert body["error"]["code"] == "validation_error"
    message = body["error"]["message"]
    assert "name:" in message, message
    assert "max_executions:" in message, message


async def test_the_service_rules_come_back_as_its_codes(service: SchedulerService) -> None:
    late = await answer(
        service, "schedule_task", name="late", function_name=RECORD, next_execution="2026-01-01"
    )
    assert late["error"]["code"] == "validation_error"
    assert "in the past" in late["error"]["message"]
    missing = await answer(service, "execute_task_now", name="nothing")
    assert missing["error"] == {"code": "not_found", "message": "no event named 'nothing'"}
    unknown = await answer(service, "delete_everything")
    assert unknown["error"]["code"] == "not_found"


async def test_refusals_follow_the_current_settings(service: SchedulerService) -> None:
    other = "tests.integration.sample_jobs:fail"
    task = {"name": "x", "function_name": other, "next_execution": "2027-01-05T09:00:00Z"}
    refused = await answer(service, "schedule_task", **task)
    assert refused["error"]["code"] == "forbidden"
    service.settings = dataclasses.replace(
        service.settings, api=ApiSettings(allowed_functions=(RECORD, other))
    )
    allowed = await answer(service, "schedule_task", **task)
    assert allowed["success"] is True, allowed


async def test_a_real_cleanup_needs_allow_cleanup(
    service: SchedulerService, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "old.log").write_text("x")
    os.utime(logs / "old.log", (0, 0))  # 1970: far beyond any retention
    policy = {"name": "logs", "directory": str(logs), "retention_days": 1}
    registered = await answer(service, "register_cleanup", **policy)
    assert registered["data"]["dry_run"] is True
    real = await answer(service, "run_cleanup", dry_run=False)
    assert real["error"]["code"] == "forbidden"
    assert (logs / "old.log").exists()

    service.settings = dataclasses.replace(
        service.settings, agents=AgentSettings(allow_cleanup=True)
    )
    registered = await answer(service, "register_cleanup", **policy)
    assert registered["data"]["dry_run"] is False
    [report] = (await answer(service, "run_cleanup", dry_run=False))["data"]
    assert (report["policy"], report["deleted"], report["dry_run"]) == ("logs", 1, False)
    assert not (logs / "old.log").exists()


async def test_register_cleanup_refuses_the_config_directory(
    service: SchedulerService, tmp_path: Path
) -> None:
    body = await answer(service, "register_cleanup", name="cfg", directory=str(tmp_path / "config"))
    assert body["error"]["code"] == "validation_error"
    assert "runner's own" in body["error"]["message"]
