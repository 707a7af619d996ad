"""YAML → data with positions: the data is what PyYAML's safe loader builds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from runner import yamlsource

DOCUMENTS = [
    "a: 1\nb: [x, 2.5, null, true, ~, '', 0x1f, 1_000, .5, -3]\n",
    "nested: {a: {b: [1, {c: d}]}}\nempty_map: {}\nempty_list: []\n",
    "x-anchor: &a {k: v, n: [1, 2]}\nuse: *a\nlist: [*a, *a]\n",
    "x-base: &b {timeout: 5, retry: {attempts: 2}}\nmerged:\n  <<: *b\n  timeout: 7\n",
    "x-1: &one {a: 1, b: 1}\nx-2: &two {b: 2, c: 2}\nm:\n  <<: [*one, *two]\n  c: 3\n",
    "set: !!set {a, b}\nbinary: !!binary aGVsbG8=\nstr: !!str 12\nfloat: !!float 3\n",
    "times: [2027-01-01, '10:00', 2027-01-01T10:00:00Z]\n",  # no implicit timestamps
    "multi: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
    "- just\n- a\n- list\n",
    "scalar\n",
]


def pyyaml(text: str) -> Any:
    """The same document read by PyYAML alone (with the project's resolvers)."""
    loader = yamlsource._Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


@pytest.mark.parametrize("text", DOCUMENTS)
def test_the_data_is_what_pyyaml_builds(text: str) -> None:
    parsed, problems = yamlsource.parse(text, "f.yaml", {})
    assert problems == []
    assert parsed.data == pyyaml(text)
    assert type(parsed.data) is type(pyyaml(text))


def test_merge_keys_keep_pyyaml_precedence_and_order() -> None:
    text = DOCUMENTS[4]
    parsed, _ = yamlsource.parse(text, "f.yaml", {})
    assert parsed.data["m"] == {"a": 1, "b": 1, "c": 3}
    assert list(parsed.data["m"]) == list(pyyaml(text)["m"])


def test_substituted_values_are_typed_as_if_written() -> None:
    parsed, problems = yamlsource.parse("n: ${N}\ns: '${N}'\n", "f.yaml", {"N": "42"})
    assert problems == []
    assert parsed.data == {"n": 42, "s": "42"}
    assert yaml.safe_load("n: 42") == {"n": parsed.data["n"]}
