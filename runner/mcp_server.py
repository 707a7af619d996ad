"""The agent tools (:mod:`runner.agent_tools`) over the Model Context Protocol.

Two transports, one server: ``runner mcp`` serves stdio (an agent host starts it as a
subprocess), and ``runner run`` with ``settings.api`` on serves streamable HTTP at
``/mcp`` behind the API's bearer token and Host check (see :mod:`runner.api`).

``runner mcp`` does not execute jobs: it writes to the database that a ``runner run``
process works from (the same config, or ``--db``), as ``runner trigger`` does. A task
it schedules runs when that runner finds it due.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

import mcp.types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from runner import agent_tools, safety
from runner.service import SchedulerService
from runner.specs import Config
from runner.store.sql import Store

INSTRUCTIONS = agent_tools.prose("""
    runner schedules Python functions and cleans up files. Tasks you schedule run in the
    runner process; list_tasks shows them and their runs. Functions must be on the
    operator's allow-list; commands are never accepted; deleting files needs the
    operator's consent (settings.agents.allow_cleanup).
""")


def build(service: SchedulerService) -> Server[Any]:
    """An MCP server offering :data:`runner.agent_tools.TOOLS` on ``service``."""

    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[_tool(t) for t in agent_tools.TOOLS])

    async def call_tool(
        _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        result = await agent_tools.call(service, params.name, params.arguments)
        body = result.to_json()
        text = types.TextContent(text=json.dumps(body, default=str))
        return types.CallToolResult(
            content=[text], structured_content=body, is_error=not result.success
        )

    return Server(
        "runner",
        version=metadata.version("runner"),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _tool(tool: agent_tools.AgentTool) -> types.Tool:
    hints = types.ToolAnnotations(
        read_only_hint=tool.read_only,
        destructive_hint=not tool.read_only,
        open_world_hint=False,
    )
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        annotations=hints,
    )


async def serve_stdio(config: Config, database_url: str) -> int:
    """``runner mcp``: serve the tools on stdin/stdout until the client closes stdin."""
    store = await Store.open(database_url)
    protected = safety.own_files(config.files, database_url)
    service = SchedulerService(store, config.settings, protected_files=protected)
    try:
        server = build(service)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await store.close()
    return 0


class HttpEndpoint:
    """The tools over streamable HTTP, as an ASGI app. Stateless (each request stands on
    its own, so every one is checked for the token) and answering JSON, not SSE.

    :meth:`running` must be entered around serving: it owns the transport's tasks.
    """

    def __init__(self, service: SchedulerService) -> None:
        # The API checks the Host header for every route; one check, not two that could
        # disagree, so the SDK's own DNS-rebinding check is off.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        # The SDK logs every stateless request at info; the runner's log is for its own news.
        logging.getLogger("mcp").setLevel(logging.WARNING)
        self.manager = StreamableHTTPSessionManager(
            build(service), json_response=True, stateless=True, security_settings=security
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.manager.asgi_app(scope, receive, send)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield
