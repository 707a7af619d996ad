"""The agent tools over MCP, driven by the official SDK's client as an agent host would.

Over stdio, the host starts ``runner mcp`` as its subprocess, beside a ``runner run``
on the same SQLite file: ``runner mcp`` only writes to the database, the runner
executes what comes due (the way ``runner trigger`` works beside it). Over HTTP, the
tools live at ``/mcp`` inside ``runner run`` with the API on, behind its token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.e2e.api_helpers import (
    ECHO,
    JOBS_MODULE,
    JOBS_SOURCE,
    NOT_ALLOWED,
    assert_error,
    auth,
    config_text,
    running_server,
)
from tests.e2e.helpers import RunnerProcess, at_in, controlled_environ, write_atomic

T = TypeVar("T")
TOOLS = {
    "schedule_task",
    "list_tasks",
    "cancel_task",
    "execute_task_now",
    "register_cleanup",
    "run_cleanup",
}
CONFIG_EVENT = {"name": "nightly", "command": ["true"], "schedule": {"cron": "0 3 * * *"}}
OLD = 10 * 86400  # seconds: older than the policy's retention


def _setup(cwd: Path) -> dict[str, Any]:
    """The config's event and cleanup policy, a directory with one old and one new file,
    and the job module. Returns what the config text needs."""
    logs = cwd / "logs"
    logs.mkdir(parents=True)
    for name, age in (("old.log", OLD), ("new.log", 0)):
        (logs / name).write_text(name)
        stamp = time.time() - age
        os.utime(logs / name, (stamp, stamp))
    (cwd / f"{JOBS_MODULE}.py").write_text(JOBS_SOURCE)
    policy = {"name": "logs", "directory": str(logs), "pattern": "*.log", "retention_days": 1}
    return {"events": [CONFIG_EVENT], "cleanup": [policy], "allowed": (ECHO,)}


async def _tool(session: ClientSession, tool: str, /, **arguments: Any) -> dict[str, Any]:
    """Call a tool; its structured content, checked to agree with ``isError``."""
    answer = await session.call_tool(tool, arguments)
    body = answer.structured_content
    assert isinstance(body, dict), answer
    assert body["success"] is not answer.is_error, answer
    return body


async def _ok(session: ClientSession, tool: str, /, **arguments: Any) -> Any:
    body = await _tool(session, tool, **arguments)
    assert body["success"] is True, body
    return body["data"]


async def _refused(session: ClientSession, tool: str, code: str, /, **arguments: Any) -> str:
    body = await _tool(session, tool, **arguments)
    assert body["success"] is False, body
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


async def _eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll ``check`` until it returns something truthy (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last: {value!r}"
        await asyncio.sleep(0.2)


async def _agent_session(session: ClientSession, cwd: Path) -> None:
    """What an agent does with the six tools, and what it must be refused."""
    tools = (await session.list_tools()).tools
    assert {t.name for t in tools} == TOOLS
    for tool in tools:
        assert tool.input_schema["type"] == "object", tool
        assert len(tool.description or "") > 200, tool  # a paragraph an agent can act on

    at, _ = at_in(1)
    created = await _ok(
        session,
        "schedule_task",
        name="agent-echo",
        function_name=ECHO,
        parameters={"greeting": "hello"},
        next_execution=at,
    )
    assert (created["source"], created["function_name"]) == ("user", ECHO)

    async def ran() -> dict[str, Any] | None:
        [task] = await _ok(session, "list_tasks", name="agent-echo", executions=5)
        done = [x for x in task["executions"] if x["outcome"] == "succeeded"]
        return done[0] if done else None

    run = await _eventually(ran, "agent-echo to run")
    assert run["result"]["parameters"] == {"greeting": "hello"}
    history = RunnerProcess(cwd).history("agent-echo")
    assert [(x.outcome, x.result["parameters"]) for x in history] == [
        ("succeeded", {"greeting": "hello"})
    ]

    await _ok(session, "execute_task_now", name="nightly")

    async def triggered() -> dict[str, Any] | None:
        [task] = await _ok(session, "list_tasks", name="nightly", executions=5)
        done = [x for x in task["executions"] if x["trigger"] == "manual"]
        return done[0] if done and done[0]["outcome"] == "succeeded" else None

    await _eventually(triggered, "the manual run of nightly")

    unlisted = await _refused(
        session, "schedule_task", "forbidden", name="sneaky", function_name=NOT_ALLOWED
    )
    assert "allowed_functions" in unlisted
    command = await _refused(
        session,
        "schedule_task",
        "forbidden",
        name="shell",
        function_name=ECHO,
        command=["rm", "-rf", "/"],
    )
    assert "never runs a command" in command
    for name in ("sneaky", "shell"):
        await _refused(session, "list_tasks", "not_found", name=name)

    await _ok(
        session,
        "schedule_task",
        name="agent-hourly",
        function_name=ECHO,
        recurring=True,
        interval_type="hours",
        interval_value=1,
    )
    cancelled = await _ok(session, "cancel_task", name="agent-hourly")
    assert (cancelled["status"], cancelled["next_execution"]) == ("cancelled", None)
    reason = await _refused(session, "cancel_task", "conflict", name="nightly")
    assert "config files" in reason
    [nightly] = await _ok(session, "list_tasks", name="nightly")
    assert nightly["status"] == "active"

    [report] = await _ok(session, "run_cleanup", policies=["logs"])
    assert report["dry_run"] is True
    assert report["would_delete"] == ["old.log (age)"]
    real = await _refused(session, "run_cleanup", "forbidden", dry_run=False)
    assert "settings.agents.allow_cleanup" in real
    assert (cwd / "logs" / "old.log").exists()

    policy = await _ok(session, "register_cleanup", name="tmp", directory=str(cwd / "tmp"))
    assert policy["dry_run"] is True  # agents' policies delete nothing unless allowed
    deleting = await _refused(
        session, "register_cleanup", "forbidden", name="tmp", directory="/tmp", dry_run=False
    )
    assert "settings.agents.allow_cleanup" in deleting
    own = await _refused(
        session, "register_cleanup", "validation_error", name="mine", directory=str(cwd)
    )
    assert "runner's own" in own


@contextlib.asynccontextmanager
async def _stdio_session(cwd: Path) -> AsyncIterator[ClientSession]:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "runner", "mcp", "--config", "scheduler.yaml"],
        cwd=cwd,
        env=controlled_environ(cwd),
    )
    with (cwd / "mcp.err").open("w") as errlog:
        async with (
            stdio_client(server, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


async def test_agent_tools_over_stdio_beside_a_runner(tmp_path: Path) -> None:
    write_atomic(tmp_path / "scheduler.yaml", config_text(port=None, **_setup(tmp_path)))
    runner = RunnerProcess(tmp_path)
    try:
        runner.start()
        async with _stdio_session(tmp_path) as session:
            await _agent_session(session, tmp_path)
    finally:
        runner.close()
    assert "Traceback" not in (tmp_path / "mcp.err").read_text()


@contextlib.asynccontextmanager
async def _http_session(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


async def test_agent_tools_over_http_inside_runner_run(tmp_path: Path) -> None:
    with running_server(tmp_path, **_setup(tmp_path)) as (server, client):
        url = f"{server.base_url}/mcp"
        async with _http_session(url, auth()) as session:
            await _agent_session(session, tmp_path)

        for headers in ({}, auth("wrong-token-0123456789")):
            refused = client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
            assert "token" in assert_error(refused, 401, "unauthorized")
        with pytest.raises(ExceptionGroup) as failed:  # the SDK's client, from its task group
            async with _http_session(url, {}) as session:
                await session.list_tools()
        assert failed.group_contains(MCPError)
        rebinding = client.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **auth(), "Host": "evil.example"}
        )
        assert_error(rebinding, 421, "invalid_host")
        accepted = client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **auth()})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["result"]["serverInfo"]["name"] == "runner"


async def test_no_token_configured_refuses_the_mcp_endpoint(tmp_path: Path) -> None:
    with running_server(tmp_path, token=None) as (_server, client):
        refused = client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **auth()})
        assert "settings.api.token" in assert_error(refused, 403, "forbidden")
