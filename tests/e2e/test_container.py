"""The container image definition, tested without Docker.

The Dockerfile is parsed for what a user relies on (the entrypoint, the config and data
paths, a non-root user, the health check, a build context that holds what is copied), and
the entrypoint is then run the way the image runs it: as PID 1 of a PID namespace of its
own (``unshare``), as the image's user (``setpriv``), with the image's environment and the
image's default config, its paths moved under a temporary root. It must write its database
in the data directory, serve commands beside it, and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.api_helpers import config_text, free_port, running_server
from tests.e2e.helpers import CLI_TIMEOUT, wait_for

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def instructions(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile (continuation lines joined, comments dropped)."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, value = pending.partition(" ")
        found.append(Instruction(keyword.upper(), value.strip()))
        pending = ""
    return found


def final_stage(path: Path) -> list[Instruction]:
    """The instructions of the last build stage (what the image is made of)."""
    parsed = instructions(path)
    start = max(i for i, ins in enumerate(parsed) if ins.keyword == "FROM")
    return parsed[start:]


def one(stage: list[Instruction], keyword: str) -> str:
    values = [ins.value for ins in stage if ins.keyword == keyword]
    assert len(values) == 1, (keyword, values)
    return values[0]


def environment(stage: list[Instruction]) -> dict[str, str]:
    """The ``ENV key=value ...`` pairs of a stage."""
    pairs: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for item in ins.value.split():
                key, _, value = item.partition("=")
                pairs[key] = value
    return pairs


def uid_gid(stage: list[Instruction]) -> tuple[int, int]:
    user, _, group = one(stage, "USER").partition(":")
    return int(user), int(group or user)


STAGE = final_stage(ROOT / "Dockerfile")
CONFIG_DIR = "/etc/runner"
DATA_DIR = "/var/lib/runner"


def test_the_image_runs_runner_run_as_a_non_root_user_from_etc_and_var_lib() -> None:
    assert one(STAGE, "FROM").split(":")[1].endswith("-slim")
    assert json.loads(one(STAGE, "ENTRYPOINT")) == ["runner", "run"]
    assert environment(STAGE)["RUNNER_CONFIG"] == CONFIG_DIR
    assert one(STAGE, "WORKDIR") == DATA_DIR  # sqlite:///runner.db lands in the volume
    assert json.loads(one(STAGE, "VOLUME")) == [DATA_DIR]
    uid, gid = uid_gid(STAGE)
    assert uid != 0
    assert gid != 0
    install = " ".join(ins.value for ins in STAGE if ins.keyword == "RUN")
    assert f"--uid {uid}" in install
    assert f"chown runner:runner {DATA_DIR}" in install


def test_the_health_check_is_the_runner_healthcheck_command() -> None:
    healthcheck = one(STAGE, "HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert json.loads(command) == ["runner", "healthcheck"]
    assert "--interval=" in options


def dockerignore_allows(path: str) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` in the build context (last match wins)."""
    kept = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            kept = negated
    return kept


def test_everything_the_build_copies_is_in_the_build_context() -> None:
    copies = [ins.value for ins in instructions(ROOT / "Dockerfile") if ins.keyword == "COPY"]
    sources = [
        source
        for value in copies
        if "--from=" not in value
        for source in [w for w in value.split() if not w.startswith("--")][:-1]
    ]
    assert "runner" in sources
    assert "pyproject.toml" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_allows(source), source
    assert dockerignore_allows("runner/scheduler.schema.json")
    assert not dockerignore_allows(".venv/bin/python")
    assert not dockerignore_allows("tests/conftest.py")


# --- the entrypoint, run as the image runs it ---------------------------------------------


@dataclass
class Image:
    """A temporary root holding the image's config and data directories."""

    root: Path
    uid: int
    gid: int

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def environ(self) -> dict[str, str]:
        """The image's environment, its paths moved under ``root``; our interpreter first."""
        env = {
            k: v.replace(CONFIG_DIR, str(self.path(CONFIG_DIR)))
            for k, v in environment(STAGE).items()
        }
        env.update(PATH=f"{BIN}:/usr/bin:/bin", HOME=str(self.path(DATA_DIR)), LANG="C.UTF-8")
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        return env

    def as_user(self, *command: str) -> list[str]:
        """``command`` as the image's user (we may be root; a non-root caller is already it)."""
        if os.geteuid() != 0:
            return list(command)
        ids = [f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
        return ["setpriv", *ids, *command]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.as_user("runner", *args),
            cwd=self.path(DATA_DIR),
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )


@pytest.fixture
def image() -> Iterator[Image]:
    # Not pytest's tmp_path: its parents are private to the user running the tests.
    root = Path(tempfile.mkdtemp(prefix="runner-image-"))
    root.chmod(0o755)
    uid, gid = uid_gid(STAGE)
    made = Image(root, uid, gid)
    config, data = made.path(CONFIG_DIR), made.path(DATA_DIR)
    config.mkdir(parents=True)
    data.mkdir(parents=True)
    for parent in (root / "etc", root / "var", root / "var/lib"):
        parent.chmod(0o755)
    shutil.copy(ROOT / "scheduler.yaml", config / "scheduler.yaml")  # COPY scheduler.yaml
    if os.geteuid() == 0:
        os.chown(data, uid, gid)  # chown runner:runner /var/lib/runner
    try:
        yield made
    finally:
        shutil.rmtree(root)


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if entry.name.isdigit():
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(stat[1]) == pid:
                    found.append(int(entry.name))
    return found


def status_field(pid: int, name: str) -> str:
    """A field of /proc/PID/status (``Uid``, ``NSpid``, ...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def namespace_pid(pid: int) -> int:
    """The process id of ``pid`` inside its own (innermost) PID namespace."""
    return int(status_field(pid, "NSpid").split()[-1])


def test_the_entrypoint_as_pid_1_and_non_root_writes_its_database_and_stops_on_sigterm(
    image: Image,
) -> None:
    entrypoint = json.loads(one(STAGE, "ENTRYPOINT"))
    command = ["unshare", "--pid", "--fork", "--mount-proc", *image.as_user(*entrypoint)]
    log = image.root / "runner.log"
    with log.open("wb") as sink:
        namespace = subprocess.Popen(
            command, cwd=image.path(DATA_DIR), env=image.environ(), stderr=sink
        )
    try:
        wait_for(lambda: "runner started" in log.read_text() or namespace.poll() is not None)
        assert namespace.poll() is None, log.read_text()
        # unshare's child is PID 1 of the namespace: the runner, which forked itself as init.
        (pid_1,) = children(namespace.pid)
        assert namespace_pid(pid_1) == 1
        assert status_field(pid_1, "Uid").split()[0] == str(image.uid)
        assert len(children(pid_1)) == 1, "PID 1 runs the runner as its child"
        database = image.path(DATA_DIR) / "runner.db"
        assert database.stat().st_uid == image.uid

        triggered = image.cli("trigger", "heartbeat")
        assert triggered.returncode == 0, triggered.stderr
        wait_for(lambda: '"succeeded"' in image.cli("history", "heartbeat", "--json").stdout)

        os.kill(pid_1, signal.SIGTERM)  # what `docker stop` does
        assert namespace.wait(20) == 0, log.read_text()
        assert "runner stopped" in log.read_text()
    finally:
        if namespace.poll() is None:
            namespace.kill()
            namespace.wait()


def test_healthcheck_asks_healthz_when_the_api_is_on(tmp_path: Path) -> None:
    def healthcheck(cwd: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "runner", "healthcheck"]
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )

    without_api = tmp_path / "no-api"
    without_api.mkdir()
    (without_api / "scheduler.yaml").write_text(config_text(port=None, token=None, allowed=()))
    assert healthcheck(without_api).returncode == 0

    with running_server(tmp_path / "api") as (server, _client):
        assert healthcheck(server.cwd).returncode == 0, healthcheck(server.cwd).stderr
        server.stop()
        down = healthcheck(server.cwd)
    assert down.returncode == 1
    assert down.stderr.startswith(f"unhealthy: http://127.0.0.1:{server.port}/healthz: ")


def test_healthcheck_probes_a_wildcard_listen_through_loopback() -> None:
    from runner.healthcheck import probe_url

    port = free_port()
    assert probe_url(f"0.0.0.0:{port}") == f"http://127.0.0.1:{port}/healthz"
    assert probe_url("[::]:8080") == "http://[::1]:8080/healthz"
    assert probe_url("10.1.2.3:80") == "http://10.1.2.3:80/healthz"
