"""YAML → plain data, keeping where every value came from.

Safe loading only. Besides the data, :func:`parse` returns the line and column of every
value and every mapping key, so later checks can point at ``file:line:col``. It also
replaces ``${VAR}`` / ``${VAR:-default}`` in string values, refuses duplicate keys and
refuses documents whose aliases expand far beyond their size (the "billion laughs") or
nest deeper than :data:`MAX_DEPTH` levels (written out or built through aliases).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.errors import Problem

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_FLOAT = "tag:yaml.org,2002:float"
# Scalars built here through PyYAML's own constructors; any other tag (binary, set, ...)
# has the whole document built by PyYAML.
_SCALARS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null"))
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Expanded nodes allowed per distinct node, and at least this many in all.
_EXPANSION_FACTOR = 20
_EXPANSION_FLOOR = 100_000
# Deeper nesting than any config needs; the checks after parsing walk by recursion.
MAX_DEPTH = 100


# libyaml's parser when PyYAML has it (several times faster), with the same safe constructor.
_SafeBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc]
    """A safe loader without implicit timestamps: times stay strings, parsed in the
    schedule's zone."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Parsed:
    """The data of one YAML document, and where each part of it stands.

    ``unset`` holds a problem for each ``${VAR}`` whose variable is not set (the caller
    decides whether that is an error); such a value keeps its ``${VAR}`` text, and
    ``unknown`` lists where those values stand, so no check judges a value nobody knows.
    """

    data: Any
    #: The parser's mark (``line`` and ``column``, from 0) of each value, and of each key
    #: of a mapping, by path: kept as the parser made them, read by :meth:`mark`.
    marks: dict[Path, Any] = field(default_factory=dict)
    key_marks: dict[Path, Any] = field(default_factory=dict)
    unset: list[Problem] = field(default_factory=list)
    unknown: set[Path] = field(default_factory=set)
    #: Where NaN and the infinities stand, when the parser saw every number built (None:
    #: not known, the data must be searched).
    non_finite: list[Path] | None = None

    def mark(self, path: Path) -> tuple[int, int]:
        """Line and column (from 1) of ``path``, or of its nearest ancestor that has one."""
        while path and path not in self.marks:
            path = path[:-1]
        found = self.marks.get(path)
        return (1, 1) if found is None else _line_col(found)

    def key_mark(self, path: Path) -> tuple[int, int] | None:
        """Line and column of the key whose value is at ``path``; None if not known."""
        found = self.key_marks.get(path)
        return None if found is None else _line_col(found)


class _Abort(Exception):
    """Stop walking a document that is hopeless (an alias bomb)."""


def parse(text: str, file: str, environ: Mapping[str, str]) -> tuple[Parsed, list[Problem]]:
    """Parse one YAML document. Problems are returned, never raised; an unset variable is
    not one of them but is noted in :attr:`Parsed.unset`."""
    plain = _read_plain(text, file, environ)
    return (plain, []) if plain is not None else _walk(text, file, environ)


def _walk(text: str, file: str, environ: Mapping[str, str]) -> tuple[Parsed, list[Problem]]:
    """:func:`parse` through the node graph: any document, every problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Parsed(None), []
        walker = _Walker(file, environ, loader, node)
        try:
            data = walker.visit(node, ())
        except _Abort:
            return Parsed(None), walker.problems
        if walker.problems:
            return Parsed(None), walker.problems
        if walker.construct:  # merge keys or rare tags: PyYAML builds the data
            data = loader.construct_document(node)
        parsed = Parsed(data, walker.marks, walker.key_marks, walker.unset, walker.unknown)
        return parsed, []
    except yaml.MarkedYAMLError as exc:
        return Parsed(None), [_yaml_problem(file, exc)]
    except yaml.YAMLError as exc:
        return Parsed(None), [Problem(file, 1, 1, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()


class _Slow(Exception):
    """The document needs the full walk (:class:`_Walker`)."""


def _read_plain(text: str, file: str, environ: Mapping[str, str]) -> Parsed | None:
    """The common document, read from the parser's events without building its node graph
    (about twice as fast): one document of untagged mappings, lists and scalars, without
    anchors, aliases, merge keys, duplicate or non-string keys or deep nesting. None for
    anything else, a YAML error included, which :func:`parse` walks in full (and reports)."""
    loader = _Loader(text)
    try:
        return _Reader(file, environ, loader).document()
    except (_Slow, yaml.YAMLError):
        return None
    finally:
        loader.dispose()


class _Reader:
    """One pass over the events of a plain document: the data, with the same marks,
    variables and values as :class:`_Walker` gives it, and where non-finite numbers are."""

    def __init__(self, file: str, environ: Mapping[str, str], loader: _Loader) -> None:
        self.walker = _Walker(file, environ, loader, None)  # for its variables
        self.loader = loader
        self.next: Callable[[], Any] = loader.get_event  # events are untyped
        self.marks: dict[Path, Any] = {}
        self.key_marks: dict[Path, Any] = {}
        self.non_finite: list[Path] = []
        self.plain: dict[str, Any] = {}  # plain scalars' values by their text
        # The first characters of plain scalars that may be something other than a string
        # (PyYAML's implicit resolvers are looked up by it): any other is a string.
        resolvers = loader.yaml_implicit_resolvers
        self.typed_starts = None if None in resolvers else frozenset(resolvers)
        self.string_keys: set[str] = set()  # plain keys known to be strings

    def document(self) -> Parsed:
        self.next()  # the stream's start
        if not isinstance(self.next(), DocumentStartEvent):
            raise _Slow  # an empty stream
        data = self.value(self.next(), ())
        if not isinstance(self.next(), DocumentEndEvent):
            raise _Slow
        if not isinstance(self.next(), StreamEndEvent):
            raise _Slow  # a second document: the walk refuses it
        walker = self.walker
        return Parsed(
            data, self.marks, self.key_marks, walker.unset, walker.unknown, self.non_finite
        )

    def value(self, event: Any, path: Path) -> Any:
        if len(path) > MAX_DEPTH:
            raise _Slow
        self.marks[path] = event.start_mark
        if event.anchor is not None or event.tag is not None:
            raise _Slow  # an anchor or a tag
        kind = event.__class__
        if kind is ScalarEvent:
            return self.scalar(event, path)
        if kind is MappingStartEvent:
            return self.mapping(path)
        if kind is SequenceStartEvent:
            return self.sequence(path)
        raise _Slow  # an alias

    def mapping(self, path: Path) -> dict[str, Any]:
        data: dict[str, Any] = {}
        marks, key_marks, next_event = self.marks, self.key_marks, self.next
        key: Any = next_event()
        while key.__class__ is ScalarEvent:
            name = key.value
            if key.anchor is not None or key.tag is not None or name in data:
                raise _Slow
            if key.implicit[0] and name not in self.string_keys:
                if self.loader.resolve(ScalarNode, name, (True, False)) != _STR:
                    raise _Slow  # a merge key, or a key that is not a string
                self.string_keys.add(name)
            at = (*path, name)
            key_marks[at] = key.start_mark
            event = next_event()
            if event.__class__ is ScalarEvent and event.anchor is None and event.tag is None:
                marks[at] = event.start_mark  # the common case, without a call of value()
                data[name] = self.scalar(event, at)
            else:
                data[name] = self.value(event, at)
            key = next_event()
        if key.__class__ is not MappingEndEvent:
            raise _Slow  # a key that is a mapping, a list or an alias
        return data

    def sequence(self, path: Path) -> list[Any]:
        items: list[Any] = []
        item = self.next()
        while item.__class__ is not SequenceEndEvent:
            items.append(self.value(item, (*path, len(items))))
            item = self.next()
        return items

    def scalar(self, event: Any, path: Path) -> Any:
        value: str = event.value
        plain: bool = event.implicit[0]
        if "$" in value:
            mark = event.start_mark
            expanded = self.walker.expand(value, plain, path, _line_col(mark))
            return value if expanded is None else self.built(*expanded, path)
        if not plain or (self.typed_starts is not None and value[:1] not in self.typed_starts):
            return value
        try:
            return self.plain[value]
        except KeyError:
            tag = self.loader.resolve(ScalarNode, value, (True, False))
            built = self.built(value, tag, path)
            if tag != _FLOAT:  # a non-finite number is noted at each place it stands
                self.plain[value] = built
            return built

    def built(self, value: str, tag: str, path: Path) -> Any:
        """The value of a scalar of ``tag``, as PyYAML's constructor builds it."""
        if tag == _STR:
            return value
        if tag not in _SCALARS:
            raise _Slow
        data = self.loader.construct_object(ScalarNode(tag, value))
        if isinstance(data, float) and not math.isfinite(data):
            self.non_finite.append(path)
        return data


def _yaml_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = _line_col(mark) if mark else (1, 1)
    message = " ".join(part for part in (exc.context, exc.problem) if part)
    return Problem(file, line, col, f"invalid YAML: {message}")


def _count_distinct(root: Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return len(seen)


def _line_col(mark: Any) -> tuple[int, int]:
    """A parser mark's line and column, counted from 1 (PyYAML's marks or libyaml's)."""
    return mark.line + 1, mark.column + 1


def _at(node: Node) -> tuple[int, int]:
    return _line_col(node.start_mark)


class _Walker:
    """One pass over the node graph: marks, duplicate keys, variables, expansion guard,
    and the data itself (PyYAML's constructor would be a second pass over every node)."""

    def __init__(
        self, file: str, environ: Mapping[str, str], loader: _Loader, root: Node | None
    ) -> None:
        self.file = file
        self.environ = environ
        self.loader = loader
        # Visits allowed: max(floor, factor * distinct nodes). The nodes are counted only
        # when the floor is used up, which a document without many aliases never does.
        self.root: Node | None = root
        self.budget = _EXPANSION_FLOOR
        self.problems: list[Problem] = []
        self.unset: list[Problem] = []
        self.unknown: set[Path] = set()
        self.marks: dict[Path, Any] = {}
        self.key_marks: dict[Path, Any] = {}
        self._substituted: set[int] = set()
        # Set when the data must come from PyYAML's constructor rather than this walk.
        self.construct = False

    def visit(self, node: Node, path: Path) -> Any:
        """Check ``node`` and return its data (meaningless once :attr:`construct` is set)."""
        self.budget -= 1
        if self.budget < 0 and self.root is not None:
            self.budget += _EXPANSION_FACTOR * _count_distinct(self.root) - _EXPANSION_FLOOR
            self.root = None
        if self.budget < 0:
            line, col = _at(node)
            message = "aliases expand this document far beyond its size; refused (alias bomb?)"
            self.problems.append(Problem(self.file, line, col, message))
            raise _Abort
        if len(path) > MAX_DEPTH:
            line, col = _at(node)
            message = f"nested more than {MAX_DEPTH} levels deep; refused"
            self.problems.append(Problem(self.file, line, col, message))
            raise _Abort
        self.marks.setdefault(path, node.start_mark)
        if isinstance(node, ScalarNode):
            self._substitute(node, path)
            if node.tag == _STR:
                return node.value
            if node.tag in _SCALARS:
                return self.loader.construct_object(node)
        elif isinstance(node, SequenceNode):
            items = [self.visit(item, (*path, index)) for index, item in enumerate(node.value)]
            if node.tag == _SEQ:
                return items
        elif isinstance(node, MappingNode):
            mapping = self._visit_mapping(node, path)
            if node.tag == _MAP:
                return mapping
        self.construct = True
        return None

    def _visit_mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        seen: dict[str, int] = {}
        merged: list[Node] = []
        data: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.append(value_node)
                continue
            key = str(key_node.value)
            if key_node.tag != _STR:
                line, col = _at(key_node)
                message = f"key {key!r} must be a string; quote it"
                self.problems.append(Problem(self.file, line, col, message, _render((*path, key))))
                continue
            if key in seen:
                message = f"duplicate key '{key}' (first at line {seen[key]})"
                line, col = _at(key_node)
                self.problems.append(Problem(self.file, line, col, message, _render((*path, key))))
                continue
            seen[key] = key_node.start_mark.line + 1
            self.key_marks[(*path, key)] = key_node.start_mark
            data[key] = self.visit(value_node, (*path, key))
        if merged:
            self.construct = True  # PyYAML's merge order and nesting rules are its own
        for source in merged:
            # Merged keys have lower precedence; they stand where the anchor was defined.
            for mapping in source.value if isinstance(source, SequenceNode) else [source]:
                self._visit_merged(mapping, path, seen)
        return data

    def _visit_merged(self, node: Node, path: Path, seen: dict[str, int]) -> None:
        if not isinstance(node, MappingNode):
            return  # the constructor reports a merge of a non-mapping
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key_node.tag != _MERGE and key not in seen:
                seen[key] = key_node.start_mark.line + 1
                self.key_marks[(*path, key)] = key_node.start_mark
                self.visit(value_node, (*path, key))

    def _substitute(self, node: ScalarNode, path: Path) -> None:
        if node.tag != _STR or id(node) in self._substituted or "$" not in node.value:
            return
        self._substituted.add(id(node))
        plain = not node.style  # None from PyYAML's parser, "" from libyaml's
        expanded = self.expand(node.value, plain, path, _at(node))
        if expanded is not None:
            node.value, node.tag = expanded

    def expand(
        self, original: str, plain: bool, path: Path, at: tuple[int, int]
    ) -> tuple[str, str] | None:
        """``original`` with its variables replaced, and its tag then; None, noting each
        unset variable, when one is unset (the value stays as written)."""
        missing = [m for m in _VAR.finditer(original) if self._value(m) is None]
        for match in missing:
            name = match.group(2)
            message = f"environment variable {name} is not set (write ${{{name}:-default}})"
            self.unset.append(Problem(self.file, *at, message, _render(path)))
        if missing:
            self.unknown.add(path)
            return None  # what it will be is not known here
        value = _VAR.sub(lambda m: self._value(m) or "", original)
        whole = _VAR.fullmatch(original)
        if plain and whole and not whole.group(1):
            # A plain `timeout: ${TIMEOUT}` becomes a number, as if written in place.
            return value, self.loader.resolve(ScalarNode, value, (True, False))
        return value, _STR

    def _value(self, match: re.Match[str]) -> str | None:
        """What ``${NAME}`` (or ``${NAME:-default}``, ``$${...}``) stands for; None when the
        variable is unset (or empty) and there is no default."""
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        value = self.environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        return None if value is None else ""


def _render(path: Path) -> str:
    """``('events', 0, 'schedule')`` → ``events[0].schedule``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


render_path = _render
