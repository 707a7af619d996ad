"""YAML → data with positions: the data is what PyYAML's safe loader builds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

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


# The reader of plain documents (parser events, no node graph) and the full walk agree.

SPECIAL = [
    "a: ${N}\nb: '${N}'\nc: x${N}y\nd: $${N}\ne: ${UNSET}\nf: ${UNSET:-7}\ng: ${EMPTY}\n",
    "nan: [.nan, .inf, -.Inf, .nan]\nn: ${NAN}\n",
    "a: 1\na: 2\n",  # duplicate key
    "1: one\n",  # a key that is not a string
    "? [a]\n: b\n",  # a key that is a list
    "a: &x [1]\nb: *x\n",
    "a: !!str 1\n",
    "--- a\n--- b\n",
    "a: [unclosed\n",
    "",
    "# only a comment\n",
    "=: value\nv: =\n",
    "deep: " + "[" * 120 + "]" * 120 + "\n",
]
ENVIRON = {"N": "42", "EMPTY": "", "NAN": ".nan"}


def agree(text: str) -> bool:
    """Whether the plain reader, when it takes ``text``, gives what the walk gives; and
    whether it took it."""
    plain = yamlsource._read_plain(text, "f.yaml", ENVIRON)
    if plain is None:
        return False
    walked, problems = yamlsource._walk(text, "f.yaml", ENVIRON)
    assert problems == []
    assert repr(plain.data) == repr(walked.data)  # repr: NaN is not equal to itself
    assert list(plain.marks) == list(walked.marks)
    assert list(plain.key_marks) == list(walked.key_marks)
    assert [plain.mark(p) for p in plain.marks] == [walked.mark(p) for p in walked.marks]
    keys = [plain.key_mark(p) for p in plain.key_marks]
    assert keys == [walked.key_mark(p) for p in walked.key_marks]
    assert (plain.unset, plain.unknown) == (walked.unset, walked.unknown)
    assert plain.non_finite == [
        path for path in walked.marks if repr(_at(walked.data, path)) in ("nan", "inf", "-inf")
    ]
    return True


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


PLAIN = [*DOCUMENTS[:2], *DOCUMENTS[6:], *SPECIAL[:2]]


@pytest.mark.parametrize("text", DOCUMENTS + SPECIAL)
def test_the_plain_reader_agrees_with_the_walk_and_leaves_the_rest_to_it(text: str) -> None:
    """Anchors, tags, merge keys, bad keys, deep nesting, several documents, bad YAML:
    the walk reads those (and reports their problems)."""
    assert agree(text) == (text in PLAIN)


SCALARS = (
    st.text(max_size=8)
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.none()
    | st.sampled_from(["${N}", "a ${N}", "${UNSET}", "yes", "0x1f", "1_000", "~", ""])
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=30,
)


@given(data=DATA, flow=st.sampled_from([None, True, False]))
@settings(max_examples=200, deadline=None, database=None)
def test_any_dumped_data_is_read_alike(data: Any, flow: bool | None) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    assert agree(text)
