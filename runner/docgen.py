"""The config reference (``docs/config.md``), generated from the JSON Schema.

``python -m runner.docgen`` prints it; ``python -m runner.docgen docs/config.md`` writes
it. The schema is the one source of every field's type, default, limits and meaning, so
the reference cannot say something the validator does not enforce; a test fails when the
committed file is not what this prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import config as configs

Schema = dict[str, Any]

HEADER = """\
# Config reference

Generated from `schemas/scheduler.schema.json` by `python -m runner.docgen docs/config.md`;
do not edit by hand. {description}

Each table lists a mapping's fields: `name` is required where it says **required**;
a dash means no default (the field is absent unless given).
"""
LIMITS = {
    "minimum": "≥ {}",
    "exclusiveMinimum": "> {}",
    "maximum": "≤ {}",
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minItems": "at least {} items",
    "pattern": "matches `{}`",
}


@dataclass(frozen=True)
class Section:
    """One mapping of the config: where it is, and its schema."""

    path: str
    schema: Schema


def resolve(node: Schema, root: Schema) -> Schema:
    """``node`` with a local ``$ref`` replaced by its target (own keys win)."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged: Schema = {**resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}
    return merged


def sections(root: Schema) -> Iterator[Section]:
    """Every mapping with named fields, depth first, in the schema's order."""

    def walk(path: str, node: Schema) -> Iterator[Section]:
        node = resolve(node, root)
        if "properties" in node:
            yield Section(path, node)
            for name, child in node["properties"].items():
                yield from walk(f"{path}.{name}" if path else name, child)
        for alternative in node.get("oneOf", []):
            if "properties" in alternative:  # e.g. `every` as a mapping: {hours: 2}
                described = {"description": node.get("description", ""), **alternative}
                yield from walk(path, described)
        if "items" in node:
            yield from walk(f"{path}[]", node["items"])

    yield from walk("", root)


def type_of(node: Schema, root: Schema) -> str:
    """A short type: ``integer``, ``string or list of string``, ``one of: a, b``."""
    node = resolve(node, root)
    if "enum" in node:
        return "one of: " + ", ".join(f"`{v}`" for v in node["enum"])
    if "oneOf" in node and "type" not in node:
        return " or ".join(type_of(alt, root) for alt in node["oneOf"] if "type" in alt)
    kind = node.get("type", "any")
    if kind == "array" and "items" in node:
        return f"list of {type_of(node['items'], root)}"
    if kind == "object" and "properties" in node:
        return "mapping (below)"
    return str(kind)


def limits(node: Schema, root: Schema) -> str:
    node = resolve(node, root)
    found = [form.format(node[key]) for key, form in LIMITS.items() if key in node]
    if node.get("minLength") == 1:
        found[found.index(LIMITS["minLength"].format(1))] = "not empty"
    if node.get("uniqueItems"):
        found.append("no duplicates")
    return "; ".join(found)


def cell(text: str) -> str:
    """Markdown table cell text (pipes escaped, one line)."""
    return text.replace("|", "\\|").replace("\n", " ")


def table(section: Section, root: Schema) -> list[str]:
    required = set(section.schema.get("required", []))
    rows = ["| field | type | default | limits | meaning |", "|---|---|---|---|---|"]
    for name, raw in section.schema["properties"].items():
        node = resolve(raw, root)
        default = f"`{json.dumps(node['default'])}`" if "default" in node else "—"
        if name in required:
            default = "**required**"
        meaning = node.get("description") or node.get("x-errors", {}).get("pattern", "")
        values = [f"`{name}`", type_of(raw, root), default, limits(raw, root), meaning]
        rows.append("| " + " | ".join(cell(v) for v in values) + " |")
    return rows


def render(root: Schema) -> str:
    """The whole reference as Markdown."""
    lines = [HEADER.format(description=root.get("description", ""))]
    for section in sections(root):
        title = section.path or "top level"
        lines.append(f"## `{title}`\n" if section.path else f"## {title}\n")
        if section.path and section.schema.get("description"):
            lines.append(section.schema["description"] + "\n")
        lines.extend(table(section, root))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    text = render(configs.schema())
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
