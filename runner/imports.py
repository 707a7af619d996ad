"""``runner validate --check-imports``: does each event's function exist and take its
parameters?

Importing runs the modules' top-level code, so this is a check a user asks for, not part
of validation. Each ``function`` is looked up as the runner would (``settings.functions``
names, then ``module:callable``) and its ``parameters`` are bound to its signature the
way the runner calls it (keyword arguments, plus ``context`` when it takes one). Problems
point at the ``function`` field, or at the parameter that does not fit.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runner.errors import Problem
from runner.functions import Functions
from runner.specs import Config, FunctionJob
from runner.yamlsource import Parsed, parse, render_path

Where = tuple[str, Parsed, tuple[Any, ...]]


def check(config: Config, environ: Mapping[str, str]) -> list[Problem]:
    """A problem for each function that cannot be imported or cannot take its
    parameters, at ``file:line:col``."""
    functions = Functions(lambda: config.settings.functions)
    places = _declared_at(config, environ)
    problems: list[Problem] = []
    for spec in config.events:
        where = places.get(spec.name)
        if isinstance(spec.job, FunctionJob) and where is not None:
            problems.extend(_check_event(spec.job, functions, where))
    return sorted(problems)


def _check_event(job: FunctionJob, functions: Functions, where: Where) -> Iterator[Problem]:
    file, parsed, path = where
    try:
        function = functions.lookup(job.function)
    except Exception as exc:  # whatever importing the module raises
        message = f"cannot import {job.function}: {type(exc).__name__}: {exc}"
        yield _problem(file, parsed, (*path, "function"), message)
        return
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to bind against
    arguments = dict(job.parameters)
    if "context" in signature.parameters:
        arguments["context"] = None
    unexpected = _unexpected(signature, arguments)
    if unexpected is not None:
        hint = difflib.get_close_matches(unexpected, list(signature.parameters), n=1)
        message = f"{job.function}{signature} takes no parameter '{unexpected}'"
        message += f"; did you mean '{hint[0]}'?" if hint else ""
        yield _problem(file, parsed, (*path, "parameters", unexpected), message, key=True)
        return
    try:
        signature.bind(**arguments)
    except TypeError as exc:
        message = f"parameters do not fit {job.function}{signature}: {exc}"
        yield _problem(file, parsed, (*path, "parameters"), message)


def _unexpected(signature: inspect.Signature, arguments: dict[str, Any]) -> str | None:
    """The first parameter given that the function has no keyword place for."""
    parameters = signature.parameters
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return next(
        (n for n in arguments if n not in parameters or parameters[n].kind not in keyword), None
    )


def _problem(
    file: str, parsed: Parsed, path: tuple[Any, ...], message: str, key: bool = False
) -> Problem:
    line, col = (parsed.key_mark(path) if key else None) or parsed.mark(path)
    return Problem(file, line, col, message, render_path(path))


def _declared_at(config: Config, environ: Mapping[str, str]) -> dict[str, Where]:
    """Where each event of ``config`` is declared: its file, that file's marks, its path."""
    places: dict[str, Where] = {}
    for file in config.files:
        parsed, _ = parse(Path(file).read_text(encoding="utf-8"), file, environ)
        events = parsed.data.get("events") if isinstance(parsed.data, dict) else None
        for index, data in enumerate(events or []):
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                places.setdefault(data["name"], (file, parsed, ("events", index)))
    return places
