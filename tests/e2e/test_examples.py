"""The examples run as they say: the library example, the deployment manifests, the CI
workflow and the pre-commit hooks (every runner config among them validated)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from runner import config as configs
from runner.cli import _parser as cli_parser
from runner.netaddr import split_listen
from runner.specs import Config
from tests.e2e.helpers import CLI_TIMEOUT, controlled_environ

NOW = datetime(2026, 12, 1, tzinfo=UTC)

EXAMPLE = Path(__file__).parents[2] / "examples" / "library.py"


def test_library_example_schedules_runs_and_refuses() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("scheduled: True")
    assert lines[2].startswith("refused: validation_error - ")
    assert "name: names use lowercase letters" in lines[2]
    assert lines[3] == "say-hello ran: [('succeeded', '{\"hello\": \"world\"}')]"
    assert lines[4] == "events in module 'examples': 1"


# --- deployment examples: the manifests hold what the runner needs ------------------------

DEPLOY = EXAMPLE.parent / "deploy"
ROOT = EXAMPLE.parents[1]
TOKEN_ENV = {"RUNNER_API_TOKEN": "t" * 32}


def manifests(path: Path) -> dict[str, dict[str, Any]]:
    """The documents of a Kubernetes manifest file, by kind (one of each kind here)."""
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    by_kind = {d["kind"]: d for d in documents}
    assert len(by_kind) == len(documents), "one document of each kind"
    return by_kind


def embedded_config(config_map: dict[str, Any], tmp_path: Path) -> Config:
    """The ConfigMap's ``scheduler.yaml``, validated as ``runner run`` would load it."""
    (name, text), *more = config_map["data"].items()
    assert not more
    assert name == "scheduler.yaml"
    path = tmp_path / name
    path.write_text(text)
    report = configs.validate([path], TOKEN_ENV, NOW)
    assert report.problems == [], [p.render() for p in report.problems]
    assert report.config is not None
    return report.config


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    assert only["image"]
    # The image's entrypoint is `runner run`: args are its flags and must parse as such.
    parsed = cli_parser().parse_args(["run", *only["args"]])
    assert parsed.handler.__name__ == "cmd_run"
    return dict(only)


def mounts(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mount path → the volume mounted there."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in container(deployment)["volumeMounts"]}


def test_kubernetes_sqlite_one_runner_with_a_configmap_and_a_volume(tmp_path: Path) -> None:
    kinds = manifests(DEPLOY / "kubernetes" / "sqlite.yaml")
    deployment, claim = kinds["Deployment"], kinds["PersistentVolumeClaim"]
    config = embedded_config(kinds["ConfigMap"], tmp_path)
    assert deployment["spec"]["replicas"] == 1  # SQLite serves one runner
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    mounted = mounts(deployment)
    assert mounted["/etc/runner"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
    claimed = mounted["/var/lib/runner"]["persistentVolumeClaim"]["claimName"]
    assert claimed == claim["metadata"]["name"]
    assert config.settings.database == "sqlite:////var/lib/runner/runner.db"
    probes = container(deployment)
    for probe in ("startupProbe", "livenessProbe"):
        assert probes[probe]["exec"]["command"] == ["runner", "healthcheck"]
    assert config.settings.api.listen is not None  # else the health check has nothing to ask
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["terminationGracePeriodSeconds"] > config.settings.shutdown_grace


def test_kubernetes_postgres_three_replicas_with_the_token_in_a_secret(tmp_path: Path) -> None:
    kinds = manifests(DEPLOY / "kubernetes" / "postgres.yaml")
    deployment, secret = kinds["Deployment"], kinds["Secret"]
    config = embedded_config(kinds["ConfigMap"], tmp_path)
    assert deployment["spec"]["replicas"] == 3
    spec = container(deployment)
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in spec["env"]}
    for ref in env.values():
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    assert secret["stringData"][env["RUNNER_DATABASE_URL"]["key"]].startswith("postgresql://")
    token_line = kinds["ConfigMap"]["data"]["scheduler.yaml"]
    assert "token: ${RUNNER_API_TOKEN}" in token_line
    assert config.settings.api.token == TOKEN_ENV["RUNNER_API_TOKEN"]
    assert mounts(deployment)["/etc/runner"]["configMap"]["name"] == "runner-config"
    assert config.settings.api.listen is not None
    (port,) = spec["ports"]
    assert port["containerPort"] == split_listen(config.settings.api.listen)[1]
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    service = kinds["Service"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_compose_builds_the_image_and_mounts_a_valid_config() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    runner = compose["services"]["runner"]
    context = (DEPLOY / "compose" / runner["build"]["context"]).resolve()
    assert (context / runner["build"]["dockerfile"]) == ROOT / "Dockerfile"
    (volume,) = runner["volumes"]
    source, target, mode = volume.split(":")
    assert (target, mode) == ("/etc/runner", "ro")
    report = configs.validate([DEPLOY / "compose" / source], TOKEN_ENV, NOW)
    assert report.problems == [], [p.render() for p in report.problems]
    database = runner["environment"]["RUNNER_DATABASE_URL"]
    assert "@postgres:5432/" in database
    assert "postgres" in runner["depends_on"]
    assert runner["command"] == container_args(runner["command"])


def container_args(args: list[str]) -> list[str]:
    """``args`` when they parse as flags of ``runner run`` (the image's entrypoint)."""
    assert cli_parser().parse_args(["run", *args]).handler.__name__ == "cmd_run"
    return args


def workflow_steps() -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load((DEPLOY / "github" / "runner.yml").read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as true
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    return {
        s["name"]: {**s, "env": {**workflow["env"], **s.get("env", {})}}
        for s in steps
        if "name" in s
    }


def run_step(step: dict[str, Any], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A workflow step's script, run by bash as GitHub runs it, with runner on the PATH."""
    environ = {
        **controlled_environ(cwd),
        **{k: v for k, v in step["env"].items() if "${{" not in v},
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        **env,
    }
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def test_github_workflow_validates_and_plans_a_config_repository(tmp_path: Path) -> None:
    steps = workflow_steps()
    assert "runner validate --format github" in steps["validate"]["run"]
    assert "runner plan --detailed-exitcode" in steps["plan"]["run"]
    shutil.copytree(DEPLOY / "compose" / "config", tmp_path / steps["plan"]["env"]["RUNNER_CONFIG"])
    database = f"sqlite:///{tmp_path / 'production.db'}"
    secrets = {"RUNNER_DATABASE_URL": database, **TOKEN_ENV}

    validated = run_step(steps["validate"], tmp_path)  # CI has no production secret
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.startswith("::warning file=config/scheduler.yaml,line=9,col=12,")
    assert "RUNNER_API_TOKEN is not set" in validated.stdout

    planned = run_step(steps["plan"], tmp_path, **secrets)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "::notice title=runner plan::" in planned.stdout  # changes: a new database
    config = ["--config", str(tmp_path / "config")]
    applied = subprocess.run(
        [sys.executable, "-m", "runner", "apply", *config],
        env={**controlled_environ(tmp_path), **secrets},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    planned = run_step(steps["plan"], tmp_path, **secrets)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "::notice" not in planned.stdout  # nothing to change


def test_pre_commit_hook_runs_runner_validate(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "runner-validate"
    assert hook["language"] == "python"  # pre-commit installs this repository's package
    shutil.copy(ROOT / "examples" / "housekeeping.yaml", tmp_path / "scheduler.yaml")
    program, *args = shlex.split(hook["entry"])
    command = [str(Path(sys.executable).parent / program), *args, *hook.get("args", [])]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env=controlled_environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    (tmp_path / "scheduler.yaml").write_text("events: [{name: x, command: ['true']}]\n")
    failed = subprocess.run(
        command,
        cwd=tmp_path,
        env=controlled_environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stdout.startswith("scheduler.yaml:1:")


def test_this_repositorys_pre_commit_runs_what_ci_runs() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    ci = (ROOT / ".ci" / "run").read_text()
    for entry in entries:
        program, *flags = entry.split()
        tool = " ".join([program, *(f for f in flags if f != "--force-exclude")])
        assert tool in ci, entry
    assert {e.split()[0] for e in entries} == {".venv/bin/ruff", ".venv/bin/mypy"}
