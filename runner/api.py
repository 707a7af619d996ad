"""HTTP over the service: the REST API, health, readiness and metrics.

Every error is JSON, ``{"success": false, "error": {"code", "message"}}``, with a fitting
status. Mutating calls need ``Authorization: Bearer <token>``; without a configured
token they are refused. On a loopback address the ``Host`` header must name loopback
too, so a web page cannot reach the API through DNS rebinding. With the ``agents`` extra
installed, ``/mcp`` serves the agent tools over MCP's streamable HTTP, every call behind
the same token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from runner import config as configs
from runner.api_guard import BodyGuard
from runner.clock import Clock
from runner.errors import RunnerError
from runner.metrics import Metrics
from runner.netaddr import host_of, is_loopback, split_listen
from runner.result import Result, http_status
from runner.service import SchedulerService
from runner.specs import ApiSettings
from runner.web import install as install_web

log = logging.getLogger("runner.api")
PREFIX = "/api/v1/scheduler"


@dataclass
class State:
    """What the API reads on each request, so a config reload changes it live."""

    service: SchedulerService
    metrics: Metrics
    clock: Clock
    api: Callable[[], ApiSettings]
    config_error: Callable[[], str | None]
    heartbeat: Callable[[], datetime | None]
    check_interval: Callable[[], float]
    # While the loop sleeps, when it means to turn next (an idle runner may sleep long).
    next_turn: Callable[[], datetime | None] = lambda: None


class DesignEvent(BaseModel):
    """A user event in the module design's arguments. Only a function listed in
    ``settings.api.allowed_functions``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100)
    function_name: str = Field(max_length=255, description="a registered name or module:callable")
    next_execution: datetime | None = None
    recurring: bool = False
    interval_type: str | None = Field(None, description="once, cron, or seconds … months")
    interval_value: int | str | None = Field(
        None, description="how many of the unit, or the cron expression"
    )
    module_id: str | None = Field(None, max_length=100)
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the function; _cron_expression may hold the cron",
    )
    max_executions: int | None = Field(None, ge=1, le=2_147_483_647)
    description: str = Field("", max_length=1000)
    timezone: str | None = None

    @property
    def function(self) -> str:
        return self.function_name


def _config_definition(name: str) -> dict[str, Any]:
    """A definition of the config's JSON Schema, its references inlined (for OpenAPI)."""
    config = configs.schema()
    definition: dict[str, Any] = _inline(config["$defs"][name], config["$defs"])
    return definition


def _config_event_schema(schema: dict[str, Any]) -> None:
    """Show the config's own event schema, the one that validates this body, less what
    makes a command: the API creates function events only."""
    event = _config_definition("event")
    for key in ("oneOf", "dependentSchemas", "x-errors"):
        event.pop(key, None)
    for key in COMMAND_FIELDS:
        del event["properties"][key]
    event["required"] = [*event["required"], "function"]
    schema.clear()
    schema.update(event, title="ConfigEvent")


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/...`` reference replaced by its definition."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


class ConfigEvent(BaseModel):
    """A user event as a config file declares it (``function``, ``schedule``, ``retry``,
    ``timeout``, ``overlap``, ``misfire``, ``jitter``, ...), validated by the config's
    JSON Schema. Only a function listed in ``settings.api.allowed_functions``; never a
    command."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_config_event_schema)
    name: str
    function: str
    schedule: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _no_command(cls, data: Any) -> Any:
        given = [k for k in COMMAND_FIELDS if isinstance(data, dict) and k in data]
        if given:
            raise ValueError(f"the API creates function events only; {given[0]} is refused")
        return data


COMMAND_FIELDS = ("command", "env", "cwd", "shell")


def _shape(body: Any) -> str:
    """Which shape a new event is in: the config's mapping names ``function`` or
    ``schedule``; anything else is read as the design's arguments."""
    config = isinstance(body, dict) and "function_name" not in body
    return "config" if config and ("function" in body or "schedule" in body) else "design"


NewEvent = Annotated[
    Annotated[DesignEvent, Tag("design")] | Annotated[ConfigEvent, Tag("config")],
    Discriminator(_shape),
]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers: ``{"success": false, "error": {"code", "message"}}``."""

    success: bool = False
    error: ErrorDetail


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: these statuses answer with :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": HTTPStatus(s).phrase} for s in statuses}


# Any call may be refused for its Host (421), its input (400, 422) or the database (503).
ANY_CALL = _documented(400, 421, 422, 500, 503)
REFUSED = _documented(401, 403)


def _config_cleanup_schema(schema: dict[str, Any]) -> None:
    """Show the config's cleanup schema; the name may be left out, as the design does."""
    schema.clear()
    schema.update(_config_definition("cleanup"))
    schema["required"] = [k for k in schema.get("required", []) if k != "name"]
    schema["title"] = "NewCleanup"


class NewCleanup(BaseModel):
    """A user cleanup policy: the config's ``cleanup`` fields, validated by its schema and
    the housekeeper's safety checks. Without a name, it is named after its directory and
    pattern, so registering the same again replaces it."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_config_cleanup_schema)
    directory: str


class CleanupRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = False
    policies: list[str] = Field(default_factory=list)


class StrictJSON(JSONResponse):
    """Always valid JSON (RFC 8259). A non-finite float, which no input can bring in any
    more but an older database may hold, is sent as ``null`` rather than failing every
    listing that includes it."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except ValueError:  # NaN or Infinity somewhere in content
            log.warning("a non-finite number in a response was sent as null")
            return super().render(_finite(content))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _error(code: str, message: str, status: int | None = None) -> JSONResponse:
    body = Result.fail(code, message).to_json()
    return StrictJSON(body, status_code=status or http_status(code))


def _respond(result: Result[Any], status: int = 200) -> JSONResponse:
    if not result.success:
        return _error(result.code or "internal_error", result.message or "failed")
    return StrictJSON(result.to_json(), status_code=status)


def create_app(state: State) -> FastAPI:
    """The ASGI application. ``/openapi.json`` describes it."""
    app = FastAPI(
        title="runner",
        version="1",
        docs_url=None,
        redoc_url=None,
        responses=ANY_CALL,
        description=__doc__,
    )
    _install_error_handlers(app)

    @app.middleware("http")
    async def check_host(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        listen = state.api().listen or "127.0.0.1:0"
        host = host_of(request.headers.get("host", ""))
        if is_loopback(split_listen(listen)[0]) and not is_loopback(host):
            return _error("invalid_host", "the Host header must name the loopback address", 421)
        return await call_next(request)

    async def authorized(request: Request) -> None:
        refusal = _token_refusal(state.api(), request.headers.get("authorization", ""))
        if refusal:
            raise refusal

    mutating = [Depends(authorized)]
    service = state.service

    @app.get(f"{PREFIX}/events")
    async def list_events(
        status: str | None = None,
        module_id: str | None = None,
        function_name: str | None = None,
        recurring: bool | None = None,
        limit: int | None = Query(None, ge=1, le=10_000),
    ) -> JSONResponse:
        return _respond(
            await service.list_events(status, module_id, function_name, recurring, limit)
        )

    @app.post(
        f"{PREFIX}/events",
        dependencies=mutating,
        status_code=201,
        responses={**REFUSED, **_documented(409)},
    )
    async def create_event(event: NewEvent) -> JSONResponse:
        """Create a user event from the module design's arguments or the config's mapping."""
        refusal = state.api().function_refusal(event.function)
        if refusal:
            return _error("forbidden", refusal)
        if isinstance(event, DesignEvent):
            result = await service.schedule_event(**event.model_dump())
        else:
            result = await service.schedule_event(event.model_dump(exclude_unset=True))
        return _respond(result, status=201)

    @app.get(f"{PREFIX}/events/{{name}}", responses=_documented(404))
    async def get_event(name: str) -> JSONResponse:
        return _respond(await service.get_event(name))

    @app.delete(
        f"{PREFIX}/events/{{name}}",
        dependencies=mutating,
        responses={**REFUSED, **_documented(404, 409)},
    )
    async def cancel_event(name: str) -> JSONResponse:
        return _respond(await service.cancel_event(name))

    @app.get(f"{PREFIX}/events/{{name}}/executions", responses=_documented(404))
    async def executions(name: str, limit: int = Query(50, ge=1, le=1000)) -> JSONResponse:
        return _respond(await service.get_executions(name, limit))

    @app.post(
        f"{PREFIX}/events/{{name}}/run",
        dependencies=mutating,
        responses={**REFUSED, **_documented(404)},
    )
    async def run_now(name: str) -> JSONResponse:
        return _respond(await service.execute_now(name))

    @app.post(
        f"{PREFIX}/events/{{name}}/pause",
        dependencies=mutating,
        responses={**REFUSED, **_documented(404)},
    )
    async def pause(name: str) -> JSONResponse:
        return _respond(await service.pause_event(name))

    @app.post(
        f"{PREFIX}/events/{{name}}/resume",
        dependencies=mutating,
        responses={**REFUSED, **_documented(404)},
    )
    async def resume(name: str) -> JSONResponse:
        return _respond(await service.resume_event(name))

    @app.get(f"{PREFIX}/cleanup")
    async def cleanup_policies() -> JSONResponse:
        return _respond(await service.list_cleanups())

    @app.post(
        f"{PREFIX}/cleanup",
        dependencies=mutating,
        status_code=201,
        responses={**REFUSED, **_documented(409)},
    )
    async def register_cleanup(policy: NewCleanup, request: Request) -> JSONResponse:
        """Create or replace a user cleanup policy (the module design's register_cleanup).
        A policy deletes files: remote callers may add one only with
        ``settings.agents.allow_cleanup``."""
        if not service.settings.agents.allow_cleanup:
            message = "registering cleanup policies remotely is off: settings.agents.allow_cleanup"
            return _error("forbidden", message)
        # The body as sent, not the model's dump: the config schema judges every key and
        # value (a null or an empty-string key is refused there, not quietly dropped).
        body = await request.json()
        return _respond(await service.register_cleanup(body), status=201)

    @app.post(
        f"{PREFIX}/cleanup/run",
        dependencies=mutating,
        responses={**REFUSED, **_documented(404)},
    )
    async def cleanup_run(body: CleanupRun | None = None) -> JSONResponse:
        body = body or CleanupRun()
        return _respond(await service.run_cleanup(body.dry_run, body.policies))

    _install_health(app, state)
    install_web(app, service, state.clock)
    # Added last, so outermost: no body reaches the Host check or a route unchecked.
    app.add_middleware(BodyGuard, error=_error)
    return app


def _token_refusal(api: ApiSettings, authorization: str) -> _Refusal | None:
    """Why a call with this ``Authorization`` header may not change anything, or None."""
    if not api.token:
        return _Refusal("forbidden", "mutating calls are disabled: settings.api.token is not set")
    if not hmac.compare_digest(authorization.encode(), f"Bearer {api.token}".encode()):
        return _Refusal("unauthorized", "missing or wrong bearer token")
    return None


def _mount_agent_tools(app: FastAPI, state: State) -> contextlib.AbstractAsyncContextManager[Any]:
    """Serve the agent tools over MCP at ``/mcp``, every call behind the bearer token (the
    Host check applies as to every route). Returns what must be entered while serving."""
    try:
        from runner.mcp_server import HttpEndpoint
    except ImportError:
        log.info(
            "no MCP endpoint: the agents extra is not installed (pip install 'runner[agents]')"
        )
        return contextlib.nullcontext()
    endpoint = HttpEndpoint(state.service)
    app.router.routes.append(Route("/mcp", _TokenGuard(state, endpoint)))
    return endpoint.running()


@dataclass(frozen=True)
class _TokenGuard:
    """An ASGI app that answers the API's JSON refusal unless the bearer token is right.
    (An object, not a function: Starlette hands a function route a Request.)"""

    state: State
    app: Callable[[Scope, Receive, Send], Awaitable[None]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = Headers(scope=scope).get("authorization", "")
        refusal = _token_refusal(self.state.api(), header)
        if refusal:
            await _error(refusal.code, refusal.message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _install_health(app: FastAPI, state: State) -> None:
    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"success": True, "data": {"status": "alive"}})

    @app.get("/readyz", responses={503: {"description": "Not ready; see data.checks"}})
    async def readyz() -> JSONResponse:
        checks = await _readiness(state)
        ready = all(c["ok"] for c in checks.values())
        body = {"success": ready, "data": {"ready": ready, "checks": checks}}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    async def metrics() -> Response:
        counts = await state.service.store.events_by_status()
        state.metrics.events.clear()
        for status, count in counts.items():
            state.metrics.events.labels(status).set(count)
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")


async def _readiness(state: State) -> dict[str, dict[str, Any]]:
    database: dict[str, Any] = {"ok": True}
    # First whether writes last (a read may well succeed on a deleted file), then a read.
    problem = state.service.store.problem()
    if problem is None:
        try:
            await state.service.store.config_state()
        except Exception as exc:
            problem = str(exc)
    if problem is not None:
        database = {"ok": False, "error": problem}
    error = state.config_error()
    beat, turn = state.heartbeat(), state.next_turn()
    stale_after = timedelta(seconds=max(3 * state.check_interval(), 10))
    # A loop asleep until its next turn is well until that turn is overdue.
    seen = max(beat, turn) if beat is not None and turn is not None else beat
    fresh = seen is not None and state.clock.now() - seen <= stale_after
    return {
        "database": database,
        "config": {"ok": error is None, "error": error},
        "loop": {"ok": fresh, "last_tick": beat.isoformat() if beat else None},
    }


async def start(state: State, listen: str) -> asyncio.Task[None]:
    """Serve the API on ``listen`` (host:port) in this event loop, once it is listening."""
    host, port = split_listen(listen)
    sock = _bind(host, port, listen)
    app = create_app(state)
    agent_tools = _mount_agent_tools(app, state)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = _Server(config)

    async def serve() -> None:
        async with agent_tools:
            await server.serve(sockets=[sock])

    task = asyncio.create_task(serve())
    while not server.started:
        if task.done():
            task.result()  # re-raises why it could not start
            raise RunnerError(f"the API could not listen on {listen}")
        await asyncio.sleep(0.01)
    log.info("API listening on %s", listen)
    return task


def _bind(host: str, port: int, listen: str) -> socket.socket:
    """A socket listening on ``host:port``. Bound here rather than by uvicorn, which
    answers a port in use with ``sys.exit``: a RunnerError names the address instead."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except (OSError, OverflowError) as exc:
        errno = exc.errno if isinstance(exc, OSError) else None
        reason = os.strerror(errno) if errno else str(exc)  # the address is named already
        raise RunnerError(f"the API cannot listen on {listen}: {reason}") from exc


class _Server(uvicorn.Server):
    """uvicorn without signal handling of its own: the runner owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Refusal(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Refusal)
    async def refused(_request: Request, exc: _Refusal) -> JSONResponse:
        return _error(exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return _error("validation_error", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(code, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in the API", exc_info=exc)
        return _error("internal_error", "unexpected error; see the runner's log", 500)
