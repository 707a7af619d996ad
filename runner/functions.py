"""Job functions by name: what an event's ``function`` refers to.

An event names its function in one of two ways, as the module design and the config do:

- a **registered name** (``backup_database``): a program registers a callable under it
  (:meth:`SchedulerService.register_function`), or the config maps it to an import path
  (``settings.functions: {backup_database: myapp.db:backup}``);
- an **import path** ``module:callable``, imported on first use.

A name the program registered wins over one the config maps.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from runner.errors import Conflict, RunnerError

# The same forms the schema accepts: a dotted identifier, optionally ``:attribute.path``.
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
NAME = re.compile(rf"^{_DOTTED}$")
IMPORT_PATH = re.compile(rf"^{_DOTTED}:{_DOTTED}$")


class UnknownFunction(RunnerError):
    """An event names a function that is neither registered nor importable."""


def is_import_path(reference: str) -> bool:
    """True for ``module:callable``; False for a registered name."""
    return ":" in reference


@functools.lru_cache(maxsize=1024)
def resolve(reference: str) -> Callable[..., Any]:
    """Import ``module:callable`` (once; later calls hit the cache)."""
    module_name, _, attribute = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{reference} is not callable")
    return target  # type: ignore[no-any-return]


class Functions:
    """The callables events may name: registered ones, the config's, and import paths.

    ``configured`` returns the config's current ``settings.functions`` (name to import
    path), read at each lookup so a reloaded config takes effect at once.
    """

    def __init__(self, configured: Callable[[], Mapping[str, str]] = dict) -> None:
        self._registered: dict[str, Callable[..., Any]] = {}
        self._configured = configured

    def register(self, name: str, function: Callable[..., Any]) -> None:
        """Make ``function`` callable by events as ``name``.

        Raises ValueError for a name that is not a dotted identifier or not callable, and
        :class:`Conflict` when ``name`` already names another callable.
        """
        if not NAME.match(name):
            raise ValueError(
                f"function names are dotted identifiers, e.g. backup_database, not {name!r}"
            )
        if not callable(function):
            raise ValueError(f"{function!r} is not callable")
        known = self._registered.get(name)
        if known is not None and known is not function:
            raise Conflict(f"a different function is already registered as '{name}'")
        self._registered[name] = function

    def names(self) -> list[str]:
        """Every registered and configured name, sorted."""
        return sorted({*self._registered, *self._configured()})

    def knows(self, reference: str) -> bool:
        """True when ``reference`` can be looked up: a known name or an import path."""
        return is_import_path(reference) or reference in self.names()

    def lookup(self, reference: str) -> Callable[..., Any]:
        """The callable ``reference`` names. Raises :class:`UnknownFunction` for a name
        nobody registered; an import path raises what importing it raises."""
        if reference in self._registered:
            return self._registered[reference]
        configured = self._configured().get(reference)
        if configured is not None:
            return resolve(configured)
        if is_import_path(reference):
            return resolve(reference)
        raise UnknownFunction(
            f"no function is registered as '{reference}' "
            "(register_function, or settings.functions in the config)"
        )
