"""The library's :class:`Result` and the error codes shared by the library, HTTP and CLI.

Not a job's result (that is :class:`runner.jobs.JobResult`): this is what every call of
:class:`~runner.service.SchedulerService` returns. The module design writes
``Result.success(data=...)`` and ``Result.error(code=..., message=...)`` to make one, and
reads ``result.success``, ``result.data`` and, on failure, the error's code and message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from runner.errors import ConfigError, Conflict, Invalid, NotFound, RunnerError, StoreError

T = TypeVar("T")
M = TypeVar("M")
V = TypeVar("V")


@dataclass(frozen=True)
class ErrorCode:
    """One error code: the HTTP status it answers with and what it means."""

    status: int
    meaning: str


# The one table of error codes (the README shows it). Library Results, HTTP error bodies
# and the CLI's JSON output all use these codes.
ERROR_CODES: Mapping[str, ErrorCode] = {
    "validation_error": ErrorCode(422, "the input does not pass validation"),
    "not_found": ErrorCode(404, "no event, policy or route by that name or id"),
    "conflict": ErrorCode(409, "contradicts the current state (name taken, config-owned)"),
    "unauthorized": ErrorCode(401, "missing or wrong bearer token"),
    "forbidden": ErrorCode(403, "not allowed (no token configured, function not allowed)"),
    "invalid_host": ErrorCode(421, "the Host header does not name the API's address"),
    "method_not_allowed": ErrorCode(405, "the route exists but not with this method"),
    "payload_too_large": ErrorCode(413, "the request body exceeds the API's 1 MiB limit"),
    "http_error": ErrorCode(400, "another refusal at the HTTP level; its status says which"),
    "database_error": ErrorCode(503, "the database is unavailable"),
    "internal_error": ErrorCode(500, "unexpected error; the runner's log has the details"),
}


# Which code each of runner's exceptions answers with; the first match wins.
_EXCEPTION_CODES: tuple[tuple[type[RunnerError], str], ...] = (
    (Invalid, "validation_error"),
    (ConfigError, "validation_error"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
    (StoreError, "database_error"),
)


def error_code(exc: BaseException) -> str:
    """The code for ``exc``: one of runner's exceptions, else ``internal_error``."""
    return next(
        (code for kind, code in _EXCEPTION_CODES if isinstance(exc, kind)), "internal_error"
    )


def exception_for(code: str, message: str) -> RunnerError:
    """The exception a failed Result's ``code`` stands for: the inverse of
    :func:`error_code`, so a command that raises it reports the same code."""
    kind = next((kind for kind, known in _EXCEPTION_CODES if known == code), RunnerError)
    return kind(message)


def http_status(code: str) -> int:
    """The HTTP status of ``code`` (400 for a code not in the table)."""
    known = ERROR_CODES.get(code)
    return known.status if known else 400


class _Either(Generic[M, V]):
    """A name that is a constructor ``M`` on the class and a value ``V`` on an instance.

    ``Result.success(data=...)`` makes a Result; ``result.success`` is a bool. An instance
    keeps its values in its ``__dict__``, which wins over this (non-data) descriptor.
    """

    def __init__(self, make: Callable[..., Any]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> M: ...
    @overload
    def __get__(self, instance: object, owner: type) -> V: ...
    def __get__(self, instance: object, owner: type) -> M | V:
        if instance is None:
            return functools.partial(self.make, owner)  # type: ignore[return-value]
        value: V = instance.__dict__[self.name]
        return value


def _success(cls: type[Result[T]], data: T | None = None, **meta: Any) -> Result[T]:
    return cls(True, data, meta=meta)


def _error(cls: type[Result[T]], code: str, message: str) -> Result[T]:
    return cls(False, None, code, message)


class Result(Generic[T]):
    """The outcome of a service call: ``data`` on success; on failure ``code`` and
    ``message`` (also as ``error``, the ``{"code", "message"}`` the HTTP API answers).
    ``meta`` carries extra facts, e.g. the counts of a listing. Immutable."""

    success: _Either[Callable[..., Result[Any]], bool] = _Either(_success)
    error: _Either[Callable[..., Result[Any]], dict[str, str | None] | None] = _Either(_error)

    def __init__(
        self,
        success: bool,
        data: T | None = None,
        code: str | None = None,
        message: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        error = None if success else {"code": code, "message": message}
        self.__dict__.update(
            success=success,
            data=data,
            code=code,
            message=message,
            meta=dict(meta or {}),
            error=error,
        )

    data: T | None
    code: str | None
    message: str | None
    meta: Mapping[str, Any]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Result is immutable; cannot set {name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((self.success, self.code, self.message))

    def __repr__(self) -> str:
        if self.success:
            return f"Result.success(data={self.data!r})"
        return f"Result.error(code={self.code!r}, message={self.message!r})"

    @classmethod
    def ok(cls, data: T | None = None, **meta: Any) -> Result[T]:
        """The same as ``Result.success(data=..., **meta)``."""
        return _success(cls, data, **meta)

    @classmethod
    def fail(cls, code: str, message: str) -> Result[T]:
        """The same as ``Result.error(code=..., message=...)``."""
        return _error(cls, code, message)

    def to_json(self) -> dict[str, Any]:
        """The JSON the HTTP API and the CLI's ``--json`` answer with:
        ``{"success": true, "data": ..., **meta}`` or
        ``{"success": false, "error": {"code": ..., "message": ...}}``."""
        if self.success:
            return {"success": True, "data": self.data, **self.meta}
        return {"success": False, "error": {"code": self.code, "message": self.message}}
