"""The docs say what the program does: the config reference is the one the schema
generates, and the worked examples print what they show."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from runner import cli, docgen
from runner import config as configs

ROOT = Path(__file__).parents[2]


def test_docs_config_md_is_generated_from_the_current_schema() -> None:
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == docgen.render(configs.schema()), (
        "docs/config.md is stale: run python -m runner.docgen docs/config.md"
    )


def test_every_field_of_the_schema_is_in_the_reference() -> None:
    text = docgen.render(configs.schema())
    for section in docgen.sections(configs.schema()):
        heading = f"## `{section.path}`" if section.path else "## top level"
        assert heading in text
        for name in section.schema["properties"]:
            assert f"| `{name}` |" in text.split(heading, 1)[1], (section.path, name)
    assert "| `retention_days` | number | — | > 0; ≤ 36500 |" in text  # cleanup's, no default
    assert '| `overlap` | one of: `forbid`, `allow`, `replace` | `"forbid"` |' in text


def console_examples(text: str) -> list[tuple[str, list[str]]]:
    """The ``$ runner ...`` commands of a page's console blocks, with the lines they print."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        command, *output = block.rstrip("\n").split("\n")
        assert command.startswith("$ runner "), command
        examples.append((command.removeprefix("$ runner "), output))
    return examples


def test_the_worked_examples_of_time_md_print_what_they_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "docs" / "time.md").read_text(encoding="utf-8")
    (config,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    (tmp_path / "scheduler.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)
    for name in ("RUNNER_CONFIG", "RUNNER_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    examples = console_examples(text)
    assert len(examples) >= 9
    for command, expected in examples:
        assert cli.main(shlex.split(command)) == 0, command
        assert capsys.readouterr().out.splitlines() == expected, command
