"""The HTTP API of ``runner run``, from outside: a real process, a real port, a real client.

Most tests share one runner (module scope) and name what they create after themselves,
so their assertions hold whatever the others did. Tests that need a configuration of
their own (no token, a config that breaks) start a runner of their own.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.api_helpers import (
    ECHO,
    NOT_ALLOWED,
    PREFIX,
    SLEEPY,
    TOKEN,
    ApiServer,
    assert_error,
    auth,
    config_text,
    data_of,
    running_server,
)
from tests.e2e.helpers import controlled_environ, wait_for, write_atomic

EVENTS = f"{PREFIX}/events"
LIST_KEYS = {"success", "data", "total_count", "filtered_count"}
EVENT_KEYS = {
    "event_id",
    "name",
    "last_error",
    "description",
    "module_id",
    "function_name",
    "parameters",
    "command",
    "source",
    "status",
    "recurring",
    "schedule",
    "next_execution",
    "last_execution",
    "execution_count",
    "failure_count",
    "max_executions",
    "config_revision",
}
CONFIG_EVENTS: list[dict[str, Any]] = [
    {
        "name": "cfg-hourly",
        "function": ECHO,
        "parameters": {"from": "config"},
        "module_id": "core",
        "schedule": {"every": "1h"},
    },
    {
        "name": "cfg-nightly",
        "function": SLEEPY,
        "module_id": "core",
        "schedule": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"},
        "enabled": False,
    },
    {
        "name": "cfg-launch",
        "function": ECHO,
        "module_id": "marketing",
        "schedule": {"at": "2099-01-01T10:00:00+00:00"},
    },
]
CLEANUP = [
    {"name": "old-logs", "directory": "logs", "pattern": "*.log", "retention_days": 1},
    {"name": "metric-logs", "directory": "metric-logs", "retention_days": 1, "priority": 5},
]


Server = tuple[ApiServer, httpx.Client]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared runner: config events, cleanup policies, a token, allowed functions."""
    cwd = tmp_path_factory.mktemp("api")
    for directory in ("logs", "metric-logs"):
        (cwd / directory).mkdir()
    with running_server(cwd, events=CONFIG_EVENTS, cleanup=CLEANUP) as started:
        yield started


@pytest.fixture
def client(api: Server) -> httpx.Client:
    return api[1]


@pytest.fixture
def server(api: Server) -> ApiServer:
    return api[0]


def soon(seconds: float = 1.0) -> str:
    """An ISO time ``seconds`` from now, written with a non-UTC offset."""
    instant = datetime.now(UTC) + timedelta(seconds=seconds)
    return instant.astimezone(timezone(timedelta(hours=2))).isoformat()


def far_future() -> str:
    return "2098-06-01T12:00:00+02:00"


def create(client: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    """Create a user event (one-time, far in the future, unless told) and return it."""
    body: dict[str, Any] = {"name": name, "function_name": ECHO, **fields}
    if not body.get("recurring"):
        body.setdefault("next_execution", far_future())
    event: dict[str, Any] = data_of(client.post(EVENTS, json=body, headers=auth()), 201)
    return event


def executions(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = data_of(client.get(f"{EVENTS}/{name}/executions"))
    return runs


def wait_finished(client: httpx.Client, name: str, trigger: str | None = None) -> dict[str, Any]:
    """The first finished execution of ``name`` (of ``trigger``), waiting up to 15 s."""

    def finished() -> dict[str, Any] | None:
        for run in executions(client, name):
            if run["outcome"] != "running" and trigger in (None, run["trigger"]):
                return run
        return None

    return wait_for(finished, timeout=15, what=f"a finished run of {name}")


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sample name and labels → value, from the Prometheus text format."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def make_old_files(directory: Path, count: int, suffix: str = ".log") -> list[Path]:
    stamp = time.time() - 10 * 86400
    files = []
    for i in range(count):
        path = directory / f"old-{i}{suffix}"
        path.write_text("x" * 10)
        os.utime(path, (stamp, stamp))
        files.append(path)
    return files


# --- health, readiness, documents -------------------------------------------------------


def test_healthz_and_readyz(client: httpx.Client) -> None:
    assert data_of(client.get("/healthz")) == {"status": "alive"}
    ready = client.get("/readyz")
    data = data_of(ready)
    assert data["ready"] is True
    assert set(data["checks"]) == {"database", "config", "loop"}
    assert all(check["ok"] is True for check in data["checks"].values())
    assert data["checks"]["config"]["error"] is None
    assert data["checks"]["loop"]["last_tick"] is not None


def test_openapi_document_lists_every_endpoint(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    named = f"{EVENTS}/{{name}}"
    assert operations >= {
        ("GET", EVENTS),
        ("POST", EVENTS),
        ("GET", named),
        ("DELETE", named),
        ("GET", f"{named}/executions"),
        ("POST", f"{named}/run"),
        ("POST", f"{named}/pause"),
        ("POST", f"{named}/resume"),
        ("GET", f"{PREFIX}/cleanup"),
        ("POST", f"{PREFIX}/cleanup/run"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    }
    create_body = document["paths"][EVENTS]["post"]["requestBody"]["content"]["application/json"]
    assert "schema" in create_body


def test_unknown_routes_methods_and_bodies_are_json_errors(client: httpx.Client) -> None:
    assert_error(client.get(f"{PREFIX}/nothing-here"), 404, "not_found")
    assert_error(client.put(EVENTS, headers=auth()), 405)
    bad_json = client.post(
        EVENTS, content=b"{not json", headers={**auth(), "content-type": "application/json"}
    )
    assert_error(bad_json, 422, "validation_error")
    assert_error(client.post(EVENTS, json=[], headers=auth()), 422, "validation_error")
    assert_error(client.get(EVENTS, params={"limit": 0}), 422, "validation_error")
    assert_error(client.get(EVENTS, params={"limit": "many"}), 422, "validation_error")
    assert_error(client.get(EVENTS, params={"recurring": "perhaps"}), 422, "validation_error")
    assert_error(client.get(f"{EVENTS}/cfg-hourly/executions", params={"limit": 0}), 422)


# --- listing and reading ----------------------------------------------------------------


def test_list_has_the_documented_shape(client: httpx.Client) -> None:
    response = client.get(EVENTS)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == LIST_KEYS
    assert body["success"] is True
    assert body["total_count"] == body["filtered_count"] == len(body["data"])
    listed = {e["name"]: e for e in body["data"]}
    assert {"cfg-hourly", "cfg-nightly", "cfg-launch"} <= set(listed)
    assert [e["name"] for e in body["data"]] == sorted(listed)
    for event in body["data"]:
        assert set(event) == EVENT_KEYS
    hourly = listed["cfg-hourly"]
    assert (hourly["source"], hourly["status"], hourly["recurring"]) == ("config", "active", True)
    assert hourly["function_name"] == ECHO
    assert hourly["parameters"] == {"from": "config"}
    assert hourly["config_revision"]
    assert listed["cfg-nightly"]["status"] == "paused"  # declared with enabled: false


@pytest.mark.parametrize(
    ("params", "expected", "holds"),
    [
        ({"status": "paused"}, {"cfg-nightly"}, lambda e: e["status"] == "paused"),
        ({"status": "active"}, {"cfg-hourly", "cfg-launch"}, lambda e: e["status"] == "active"),
        ({"module_id": "core"}, {"cfg-hourly", "cfg-nightly"}, lambda e: e["module_id"] == "core"),
        ({"function_name": SLEEPY}, {"cfg-nightly"}, lambda e: e["function_name"] == SLEEPY),
        ({"recurring": "true"}, {"cfg-hourly", "cfg-nightly"}, lambda e: e["recurring"]),
        ({"recurring": "false"}, {"cfg-launch"}, lambda e: not e["recurring"]),
        (
            {"module_id": "core", "status": "active"},
            {"cfg-hourly"},
            lambda e: e["module_id"] == "core" and e["status"] == "active",
        ),
        ({"module_id": "nobody-at-all"}, set(), lambda e: False),
    ],
)
def test_list_filters(
    client: httpx.Client,
    params: dict[str, str],
    expected: set[str],
    holds: Callable[[dict[str, Any]], bool],
) -> None:
    everything = client.get(EVENTS).json()
    body = client.get(EVENTS, params=params).json()
    assert set(body) == LIST_KEYS
    names = {e["name"] for e in body["data"]}
    assert expected <= names
    assert all(holds(e) for e in body["data"]), body["data"]
    assert body["filtered_count"] == len(body["data"])
    assert body["total_count"] == everything["total_count"]
    matching = {e["name"] for e in everything["data"] if holds(e)}
    assert names == matching


def test_list_limit_cuts_the_page_not_the_counts(client: httpx.Client) -> None:
    body = client.get(EVENTS, params={"limit": 1}).json()
    assert len(body["data"]) == 1
    assert body["filtered_count"] == body["total_count"] >= 3
    core = client.get(EVENTS, params={"limit": 1, "module_id": "core"}).json()
    assert [e["name"] for e in core["data"]] == ["cfg-hourly"]
    assert core["filtered_count"] == 2


def test_get_event_and_not_found(client: httpx.Client) -> None:
    event = data_of(client.get(f"{EVENTS}/cfg-launch"))
    assert set(event) == EVENT_KEYS
    assert event["name"] == "cfg-launch"
    assert datetime.fromisoformat(event["next_execution"]) == datetime(2099, 1, 1, 10, tzinfo=UTC)
    message = assert_error(client.get(f"{EVENTS}/no-such-event"), 404, "not_found")
    assert "no-such-event" in message
    assert_error(client.get(f"{EVENTS}/no-such-event/executions"), 404, "not_found")


def test_executions_of_an_event(client: httpx.Client) -> None:
    assert isinstance(executions(client, "cfg-launch"), list)
    data_of(client.post(f"{EVENTS}/cfg-launch/run", headers=auth()))
    run = wait_finished(client, "cfg-launch", "manual")
    assert run["event"] == "cfg-launch"
    assert run["outcome"] == "succeeded"
    assert run["attempt"] == 1
    assert run["result"] == {"event": "cfg-launch", "parameters": {}}
    assert run["runner_id"]
    assert run["config_revision"]
    limited = data_of(client.get(f"{EVENTS}/cfg-launch/executions", params={"limit": 1}))
    assert len(limited) == 1


# --- creating, cancelling ---------------------------------------------------------------


def test_a_created_user_event_runs(client: httpx.Client) -> None:
    body = {
        "name": "api-created",
        "function_name": ECHO,
        "next_execution": soon(1),
        "parameters": {"greeting": "hello"},
        "module_id": "api-tests",
        "description": "made over HTTP",
    }
    response = client.post(EVENTS, json=body, headers=auth())
    event = data_of(response, 201)
    assert set(event) == EVENT_KEYS
    assert (event["name"], event["source"], event["status"]) == ("api-created", "user", "active")
    assert (event["module_id"], event["description"]) == ("api-tests", "made over HTTP")
    assert event["parameters"] == {"greeting": "hello"}
    assert event["config_revision"] is None
    run = wait_finished(client, "api-created")
    assert run["outcome"] == "succeeded", run
    assert run["trigger"] == "schedule"
    assert run["result"] == {"event": "api-created", "parameters": {"greeting": "hello"}}
    done = data_of(client.get(f"{EVENTS}/api-created"))
    assert done["status"] == "completed"
    assert done["execution_count"] == 1


def test_a_recurring_user_event_with_a_cron(client: httpx.Client) -> None:
    event = create(
        client,
        "api-cron",
        recurring=True,
        interval_type="cron",
        interval_value="30 2 * * *",
        timezone="Europe/Berlin",
        max_executions=5,
    )
    assert event["recurring"] is True
    assert event["schedule"]["cron"] == "30 2 * * *"
    assert event["max_executions"] == 5
    upcoming = datetime.fromisoformat(event["next_execution"])
    assert upcoming > datetime.now(UTC)


def test_only_allowed_functions_may_be_named(client: httpx.Client) -> None:
    for function in (NOT_ALLOWED, "os:system", "subprocess:run"):
        body = {"name": "api-forbidden", "function_name": function, "next_execution": soon(60)}
        message = assert_error(client.post(EVENTS, json=body, headers=auth()), 403, "forbidden")
        assert function in message
    assert_error(client.get(f"{EVENTS}/api-forbidden"), 404)


@pytest.mark.parametrize(
    "extra",
    [
        {"command": ["sh", "-c", "touch pwned"]},
        {"command": "touch pwned"},
        {"shell": True},
        {"env": {"X": "1"}},
        {"function": ECHO},
    ],
)
def test_a_command_cannot_be_created(client: httpx.Client, extra: dict[str, Any]) -> None:
    body = {"name": "api-command", "function_name": ECHO, "next_execution": soon(1), **extra}
    message = assert_error(client.post(EVENTS, json=body, headers=auth()), 422, "validation_error")
    assert next(iter(extra)) in message
    assert_error(client.get(f"{EVENTS}/api-command"), 404)


def test_invalid_events_are_refused_with_422_and_duplicates_with_409(client: httpx.Client) -> None:
    def post(**fields: Any) -> httpx.Response:
        body = {"function_name": ECHO, "next_execution": soon(60), **fields}
        return client.post(EVENTS, json=body, headers=auth())

    assert "name" in assert_error(post(name="Not Valid"), 422, "validation_error")
    assert "past" in assert_error(
        post(name="api-past", next_execution="2001-01-01T00:00:00Z"), 422, "validation_error"
    )
    assert "cron" in assert_error(
        post(name="api-cron-bad", recurring=True, interval_type="cron", interval_value="* *"),
        422,
        "validation_error",
    )
    assert "timezone" in assert_error(post(name="api-zone", timezone="Nowhere/Land"), 422)
    no_time = client.post(
        EVENTS, json={"name": "api-no-time", "function_name": ECHO}, headers=auth()
    )
    assert "next_execution" in assert_error(no_time, 422, "validation_error")
    assert_error(client.post(EVENTS, json={"name": "x"}, headers=auth()), 422, "validation_error")
    data_of(post(name="api-dup"), 201)
    assert "api-dup" in assert_error(post(name="api-dup"), 409, "conflict")
    assert_error(post(name="cfg-hourly"), 409, "conflict")


def test_a_huge_max_executions_is_a_validation_error_not_a_server_error(
    client: httpx.Client,
) -> None:
    body = {
        "name": "api-huge",
        "function_name": ECHO,
        "next_execution": soon(3600),
        "max_executions": 10**20,
    }
    message = assert_error(client.post(EVENTS, json=body, headers=auth()), 422, "validation_error")
    assert "max_executions" in message


def test_delete_cancels_a_user_event_but_not_a_config_event(client: httpx.Client) -> None:
    create(client, "api-doomed", recurring=True, interval_type="minutes", interval_value=30)
    cancelled = data_of(client.delete(f"{EVENTS}/api-doomed", headers=auth()))
    assert cancelled["status"] == "cancelled"
    assert cancelled["next_execution"] is None
    assert data_of(client.get(f"{EVENTS}/api-doomed"))["status"] == "cancelled"

    before = data_of(client.get(f"{EVENTS}/cfg-hourly"))
    message = assert_error(client.delete(f"{EVENTS}/cfg-hourly", headers=auth()), 409, "conflict")
    assert "config" in message
    assert data_of(client.get(f"{EVENTS}/cfg-hourly")) == before
    assert_error(client.delete(f"{EVENTS}/no-such-event", headers=auth()), 404, "not_found")


# --- run, pause, resume -----------------------------------------------------------------


def test_run_pause_and_resume(client: httpx.Client) -> None:
    create(client, "api-controls", recurring=True, interval_type="hours", interval_value=1)
    paused = data_of(client.post(f"{EVENTS}/api-controls/pause", headers=auth()))
    assert paused["status"] == "paused"
    listed = client.get(EVENTS, params={"status": "paused"}).json()["data"]
    assert "api-controls" in {e["name"] for e in listed}
    resumed = data_of(client.post(f"{EVENTS}/api-controls/resume", headers=auth()))
    assert resumed["status"] == "active"
    assert datetime.fromisoformat(resumed["next_execution"]) > datetime.now(UTC)

    data_of(client.post(f"{EVENTS}/api-controls/run", headers=auth()))
    run = wait_finished(client, "api-controls", "manual")
    assert run["outcome"] == "succeeded"
    assert run["result"] == {"event": "api-controls", "parameters": {}}
    for action in ("run", "pause", "resume"):
        assert_error(client.post(f"{EVENTS}/no-such-event/{action}", headers=auth()), 404)


# --- cleanup ----------------------------------------------------------------------------


def test_cleanup_list_and_run(client: httpx.Client, server: ApiServer) -> None:
    policies = {p["name"]: p for p in data_of(client.get(f"{PREFIX}/cleanup"))}
    assert set(policies) >= {"old-logs", "metric-logs"}
    assert policies["old-logs"]["directory"] == str(server.cwd / "logs")
    assert policies["old-logs"]["pattern"] == "*.log"

    old = make_old_files(server.cwd / "logs", 2)
    keep = server.cwd / "logs" / "fresh.log"
    keep.write_text("new")
    dry = data_of(
        client.post(
            f"{PREFIX}/cleanup/run",
            json={"dry_run": True, "policies": ["old-logs"]},
            headers=auth(),
        )
    )
    (report,) = dry
    assert (report["policy"], report["dry_run"], report["deleted"]) == ("old-logs", True, 2)
    assert sorted(w.split(" ")[0] for w in report["would_delete"]) == sorted(p.name for p in old)
    assert all(p.exists() for p in old)

    (real,) = data_of(
        client.post(f"{PREFIX}/cleanup/run", json={"policies": ["old-logs"]}, headers=auth())
    )
    assert (real["dry_run"], real["deleted"], real["errors"]) == (False, 2, [])
    assert not any(p.exists() for p in old)
    assert keep.exists()

    everything = data_of(client.post(f"{PREFIX}/cleanup/run", headers=auth()))
    assert {r["policy"] for r in everything} >= {"old-logs", "metric-logs"}
    unknown = client.post(f"{PREFIX}/cleanup/run", json={"policies": ["nope"]}, headers=auth())
    assert "nope" in assert_error(unknown, 404, "not_found")
    extra = client.post(f"{PREFIX}/cleanup/run", json={"force": True}, headers=auth())
    assert_error(extra, 422, "validation_error")


# --- authentication ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """A mutating call: how to prepare it (with the token) and what success looks like."""

    method: str
    path: str
    body: dict[str, Any] | None
    success: int


def mutation(client: httpx.Client, endpoint: str, tag: str) -> Mutation:
    """The call ``endpoint`` on a user event of its own (created here, with the token)."""
    name = f"auth-{tag}"
    if endpoint == "create":
        body = {"name": name, "function_name": ECHO, "next_execution": far_future()}
        return Mutation("POST", EVENTS, body, 201)
    if endpoint == "cleanup":
        return Mutation("POST", f"{PREFIX}/cleanup/run", {"dry_run": True}, 200)
    create(client, name)
    if endpoint == "delete":
        return Mutation("DELETE", f"{EVENTS}/{name}", None, 200)
    return Mutation("POST", f"{EVENTS}/{name}/{endpoint}", None, 200)


MUTATING = ["create", "delete", "run", "pause", "resume", "cleanup"]


@pytest.mark.parametrize("endpoint", MUTATING)
def test_every_mutating_endpoint_needs_the_bearer_token(
    client: httpx.Client, endpoint: str
) -> None:
    call = mutation(client, endpoint, endpoint)

    def send(headers: dict[str, str]) -> httpx.Response:
        return client.request(call.method, call.path, json=call.body, headers=headers)

    wrong_headers = [
        {},
        auth("wrong-token-wrong-token"),
        auth(TOKEN + "x"),
        auth(TOKEN[:-1]),
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"bearer  {TOKEN}"},
    ]
    for headers in wrong_headers:
        assert_error(send(headers), 401, "unauthorized")
    if endpoint == "create":
        assert_error(client.get(f"{EVENTS}/auth-create"), 404)  # nothing was created
    if endpoint in ("delete", "pause"):
        assert data_of(client.get(f"{EVENTS}/auth-{endpoint}"))["status"] == "active"
    response = send(auth())
    assert response.status_code == call.success, response.text
    assert response.json()["success"] is True


def test_reading_needs_no_token(client: httpx.Client) -> None:
    for path in (EVENTS, f"{EVENTS}/cfg-hourly", f"{EVENTS}/cfg-hourly/executions"):
        assert client.get(path).status_code == 200
    assert client.get(f"{PREFIX}/cleanup").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_without_a_configured_token_every_mutating_call_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path, token=None, events=CONFIG_EVENTS[:1]) as (_, client):
        calls = [
            ("POST", EVENTS, {"name": "n", "function_name": ECHO, "next_execution": soon(60)}),
            ("DELETE", f"{EVENTS}/cfg-hourly", None),
            ("POST", f"{EVENTS}/cfg-hourly/run", None),
            ("POST", f"{EVENTS}/cfg-hourly/pause", None),
            ("POST", f"{EVENTS}/cfg-hourly/resume", None),
            ("POST", f"{PREFIX}/cleanup/run", {"dry_run": True}),
        ]
        for method, path, body in calls:
            for headers in ({}, auth(), auth("anything-at-all-here")):
                response = client.request(method, path, json=body, headers=headers)
                message = assert_error(response, 403, "forbidden")
                assert "token" in message
        event = data_of(client.get(f"{EVENTS}/cfg-hourly"))
        assert event["status"] == "active"
        assert event["execution_count"] == 0
        assert data_of(client.get(EVENTS)) != []


# --- Host header ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "[::2]"])
def test_a_foreign_host_header_is_refused(
    client: httpx.Client, server: ApiServer, host: str
) -> None:
    for method, path in (("GET", "/healthz"), ("GET", EVENTS), ("GET", "/metrics")):
        response = client.request(method, path, headers={"Host": host})
        message = assert_error(response, 421, "invalid_host")
        assert "Host" in message
    create_body = {"name": "rebound", "function_name": ECHO, "next_execution": soon(60)}
    response = client.post(EVENTS, json=create_body, headers={**auth(), "Host": host})
    assert_error(response, 421, "invalid_host")
    assert_error(client.get(f"{EVENTS}/rebound"), 404)


def test_loopback_host_headers_are_accepted(client: httpx.Client, server: ApiServer) -> None:
    hosts = ["127.0.0.1", "127.0.0.2", "localhost", "LocalHost", "[::1]"]
    for host in [*hosts, *(f"{h}:{server.port}" for h in hosts)]:
        assert client.get("/healthz", headers={"Host": host}).status_code == 200


# --- metrics ----------------------------------------------------------------------------


def test_metrics_are_prometheus_text_with_the_runners_series(
    client: httpx.Client, server: ApiServer
) -> None:
    create(client, "api-metered", next_execution=soon(1))
    wait_finished(client, "api-metered")
    old = make_old_files(server.cwd / "metric-logs", 3, suffix=".txt")
    (report,) = data_of(
        client.post(f"{PREFIX}/cleanup/run", json={"policies": ["metric-logs"]}, headers=auth())
    )
    assert report["deleted"] == 3
    assert not any(p.exists() for p in old)

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "runner_executions_total",
        "runner_lateness_seconds",
        "runner_running_executions",
        "runner_events",
        "runner_config_reloads_total",
        "runner_cleanup_deleted_files_total",
        "runner_execution_duration_seconds",
        "runner_execution_seconds_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text or f"# TYPE {name}" in text, name
    samples = metric_samples(text)
    assert (
        samples[("runner_executions_total", (("event", "api-metered"), ("outcome", "succeeded")))]
        == 1
    )
    assert samples[("runner_execution_duration_seconds_count", ())] >= 1
    assert ("runner_execution_seconds_total", (("event", "api-metered"),)) in samples
    assert samples[("runner_lateness_seconds_count", ())] >= 1
    assert samples[("runner_running_executions", ())] >= 0
    assert samples[("runner_events", (("status", "paused"),))] >= 1
    assert samples[("runner_events", (("status", "active"),))] >= 2
    deleted = samples.get(("runner_cleanup_deleted_files_total", (("policy", "metric-logs"),)))
    assert deleted == 3, "a cleanup through the API is not counted in the cleanup metrics"


# --- config reload and readiness --------------------------------------------------------


def test_a_broken_config_turns_readyz_503_and_the_runner_keeps_going(tmp_path: Path) -> None:
    with running_server(tmp_path, events=CONFIG_EVENTS[:1]) as (server, client):
        assert client.get("/readyz").status_code == 200
        good = server.config.read_text()
        write_atomic(server.config, good + "events: [oops\n")

        def not_ready() -> dict[str, Any] | None:
            response = client.get("/readyz")
            return response.json() if response.status_code == 503 else None

        body = wait_for(not_ready, timeout=15, what="/readyz to answer 503")
        assert body["success"] is False
        checks = body["data"]["checks"]
        assert body["data"]["ready"] is False
        assert checks["config"]["ok"] is False
        assert "scheduler.yaml" in checks["config"]["error"]
        assert checks["database"]["ok"] is True
        assert checks["loop"]["ok"] is True

        # Still running on the last good config, and still serving.
        assert server.alive
        assert data_of(client.get("/healthz")) == {"status": "alive"}
        assert data_of(client.get(f"{EVENTS}/cfg-hourly"))["source"] == "config"
        create(client, "after-break", next_execution=soon(1))
        assert wait_finished(client, "after-break")["outcome"] == "succeeded"
        samples = metric_samples(client.get("/metrics").text)
        assert samples[("runner_config_reloads_total", (("result", "refused"),))] >= 1
        assert samples[("runner_config_error", ())] == 1

        write_atomic(server.config, good)
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=15, what="ready again")
        samples = metric_samples(client.get("/metrics").text)
        assert samples[("runner_config_error", ())] == 0
        assert samples[("runner_config_reloads_total", (("result", "applied"),))] >= 1
        assert server.stop() == 0


# --- validate ---------------------------------------------------------------------------


def run_validate(directory: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = directory / "scheduler.yaml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "runner", "validate", "--config", str(path)],
        cwd=directory,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_refuses_a_public_listen_without_a_token(tmp_path: Path) -> None:
    public = "settings:\n  api:\n    listen: 0.0.0.0:8080\n"
    refused = run_validate(tmp_path, public)
    assert refused.returncode == 1, refused
    output = refused.stdout + refused.stderr
    assert "token" in output
    assert "scheduler.yaml:" in output
    assert "Traceback" not in output
    with_token = public + f"    token: {TOKEN}\n"
    accepted = run_validate(tmp_path, with_token)
    assert accepted.returncode == 0, accepted
    loopback = run_validate(tmp_path, "settings:\n  api:\n    listen: 127.0.0.1:8080\n")
    assert loopback.returncode == 0, loopback


def test_config_text_is_what_the_runner_accepts(tmp_path: Path) -> None:
    """The helper's config passes ``runner validate`` (so the fixtures test what we think)."""
    text = config_text(port=8080, events=CONFIG_EVENTS, cleanup=CLEANUP)
    for directory in ("logs", "metric-logs"):
        (tmp_path / directory).mkdir()
    done = run_validate(tmp_path, text)
    assert done.returncode == 0, done.stdout + done.stderr


# --- hostile bodies, and a port in use ----------------------------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_number_in_a_body_is_refused_and_nothing_is_stored(
    client: httpx.Client, number: str
) -> None:
    name = f"api-nonfinite-{number.strip('-').lower()}"
    body = (
        f'{{"name": "{name}", "function_name": "{ECHO}", "next_execution": "{far_future()}",'
        f' "parameters": {{"obj": {number}}}}}'
    )
    headers = {**auth(), "content-type": "application/json"}
    message = assert_error(client.post(EVENTS, content=body, headers=headers), 422)
    assert "strict JSON" in message
    assert_error(client.get(f"{EVENTS}/{name}"), 404)
    assert data_of(client.get(EVENTS))  # the listing still answers


def test_a_non_finite_number_already_stored_is_served_as_null(
    client: httpx.Client, server: ApiServer
) -> None:
    """A database written before strict input may hold a NaN: every listing still answers."""
    create(client, "api-stored-nan", parameters={"obj": 7777.5})
    with sqlite3.connect(server.cwd / "runner.db") as db:
        for column in ("spec", "parameters"):
            db.execute(
                f"UPDATE scheduler_events SET {column} = replace({column}, '7777.5', 'NaN')"
                " WHERE name = 'api-stored-nan'"
            )
    listed = {e["name"]: e for e in data_of(client.get(EVENTS))}
    assert listed["api-stored-nan"]["parameters"] == {"obj": None}
    assert data_of(client.get(f"{EVENTS}/api-stored-nan"))["parameters"] == {"obj": None}


def test_an_oversized_body_is_refused_with_413_whether_sized_or_chunked(
    client: httpx.Client,
) -> None:
    def body(name: str) -> bytes:
        event = {"name": name, "function_name": ECHO, "next_execution": far_future()}
        return json.dumps({**event, "parameters": {"blob": "x" * (2 * MIB)}}).encode()

    headers = {**auth(), "content-type": "application/json"}
    sized = client.post(EVENTS, content=body("api-huge-sized"), headers=headers)
    assert "bytes" in assert_error(sized, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        data = body("api-huge-chunked")
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    chunked = client.post(EVENTS, content=chunks(), headers=headers)
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
    assert_error(chunked, 413, "payload_too_large")
    for name in ("api-huge-sized", "api-huge-chunked"):
        assert_error(client.get(f"{EVENTS}/{name}"), 404)


def test_parameters_are_capped_below_the_body_limit(client: httpx.Client) -> None:
    body = {
        "name": "api-big-parameters",
        "function_name": ECHO,
        "next_execution": far_future(),
        "parameters": {"blob": "x" * (100 * 1024)},
    }
    message = assert_error(client.post(EVENTS, json=body, headers=auth()), 422, "validation_error")
    assert "parameters" in message
    assert_error(client.get(f"{EVENTS}/api-big-parameters"), 404)
    create(client, "api-fine-parameters", parameters={"blob": "x" * 1024})


def test_a_port_in_use_is_a_one_line_error_and_exit_1(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        (tmp_path / "scheduler.yaml").write_text(config_text(port=port))
        done = subprocess.run(
            [sys.executable, "-m", "runner", "run", "--log-format", "json"],
            cwd=tmp_path,
            env=controlled_environ(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("runner: error:")]
    in_use = os.strerror(errno.EADDRINUSE)
    assert errors == [f"runner: error: the API cannot listen on 127.0.0.1:{port}: {in_use}"]


def test_registering_a_cleanup_policy_needs_the_token_and_allow_cleanup(
    client: httpx.Client,
) -> None:
    body = {"directory": "logs", "retention_days": 1}
    before = data_of(client.get(f"{PREFIX}/cleanup"))
    assert_error(client.post(f"{PREFIX}/cleanup", json=body), 401, "unauthorized")
    refused = client.post(f"{PREFIX}/cleanup", json=body, headers=auth())
    assert "settings.agents.allow_cleanup" in assert_error(refused, 403, "forbidden")
    assert data_of(client.get(f"{PREFIX}/cleanup")) == before
