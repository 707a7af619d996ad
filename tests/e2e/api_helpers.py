"""Helpers for the HTTP API tests: ``runner run`` with ``settings.api.listen`` as a real
subprocess on a free loopback port, reached with a real HTTP client (httpx).

The runner works in a directory of its own (an SQLite file, a config file, a module of
job functions it can import from its working directory). It is always stopped: SIGTERM,
then SIGKILL if it lingers.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from tests.e2e.helpers import controlled_environ, wait_for, write_atomic

T = TypeVar("T")

TOKEN = "s3cret-token-for-tests-0123456789"
PREFIX = "/api/v1/scheduler"
JOBS_MODULE = "apijobs"
ECHO = f"{JOBS_MODULE}:echo"
SLEEPY = f"{JOBS_MODULE}:sleepy"
NOT_ALLOWED = f"{JOBS_MODULE}:forbidden"

# Job functions the runner imports from its working directory.
JOBS_SOURCE = """
import time


def echo(context, **parameters):
    return {"event": context.event, "parameters": parameters}


def sleepy(seconds=0.5):
    time.sleep(seconds)
    return "rested"


def forbidden():
    return "must never run through the API"
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def config_text(
    *,
    port: int | None,
    token: str | None = TOKEN,
    allowed: Sequence[str] = (ECHO, SLEEPY),
    events: Sequence[Mapping[str, Any]] = (),
    cleanup: Sequence[Mapping[str, Any]] = (),
    **settings: Any,
) -> str:
    """A config file for an API test (``port`` None: no API)."""
    api: dict[str, Any] = {}
    if port is not None:
        api["listen"] = f"127.0.0.1:{port}"
    if token is not None:
        api["token"] = token
    if allowed:
        api["allowed_functions"] = list(allowed)
    merged: dict[str, Any] = {
        "database": "sqlite:///runner.db",
        "shutdown_grace": 1,
        "check_interval": 0.5,
        **settings,
    }
    if api:
        merged["api"] = api
    document: dict[str, Any] = {"settings": merged, "events": list(events)}
    if cleanup:
        document["cleanup"] = list(cleanup)
    return yaml.safe_dump(document, sort_keys=False)


class ApiServer:
    """``python -m runner run`` with the API on, in ``cwd``; the client talks to it."""

    def __init__(self, cwd: Path, port: int, token: str | None = TOKEN) -> None:
        self.cwd = cwd
        self.port = port
        self.token = token
        self.config = cwd / "scheduler.yaml"
        self.log_path = cwd / "runner.log"
        self.process: subprocess.Popen[bytes] | None = None
        (cwd / f"{JOBS_MODULE}.py").write_text(JOBS_SOURCE)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self, text: str) -> None:
        write_atomic(self.config, text)

    def environ(self) -> dict[str, str]:
        return controlled_environ(self.cwd)

    def start(self, timeout: float = 30.0) -> None:
        """Start the runner and wait until ``/healthz`` answers."""
        command = [sys.executable, "-m", "runner", "run", "--config", self.config.name]
        command += ["--log-format", "json"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.environ(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        wait_for(
            lambda: self._healthy() or not self.alive,
            timeout=timeout,
            interval=0.05,
            what="/healthz",
        )
        assert self.alive, f"runner exited at start:\n{self.log_text()}"

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; the exit status (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=15)


@contextlib.contextmanager
def running_server(
    cwd: Path, token: str | None = TOKEN, **config: Any
) -> Iterator[tuple[ApiServer, httpx.Client]]:
    """A started :class:`ApiServer` and a client for it; both closed afterwards."""
    cwd.mkdir(parents=True, exist_ok=True)
    server = ApiServer(cwd, free_port(), token)
    server.write_config(config_text(port=server.port, token=token, **config))
    try:
        server.start()
        with server.client() as client:
            yield server, client
    finally:
        server.stop()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    """``response`` is a JSON error of ``status`` (and ``code``); returns its message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"success", "error"}, body
    assert body["success"] is False, body
    assert set(body["error"]) == {"code", "message"}, body
    for key in ("code", "message"):
        assert isinstance(body["error"][key], str), body
        assert body["error"][key], body
    if code is not None:
        assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


def data_of(response: httpx.Response, status: int = 200) -> Any:
    """The ``data`` of a successful JSON answer with ``status``."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["success"] is True, body
    return body["data"]
