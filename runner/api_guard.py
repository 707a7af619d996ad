"""What a request body may be before the API reads it: at most ``MAX_BODY`` bytes, and,
when it is JSON, strict JSON (RFC 8259: no ``NaN``, no ``Infinity``, no number too large
for a float), because the database and every later listing must hold it as JSON.

:class:`BodyGuard` is ASGI middleware, so it sees the body as the client sends it: with a
``Content-Length`` (refused before reading when it is too large) or chunked (refused as
soon as the bytes read pass the limit). A body that passes is handed to the app unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

MAX_BODY = 1024 * 1024  # the largest event is a few KiB; a MiB leaves room, not a DoS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
# (code, message, HTTP status) -> an ASGI app answering the API's JSON error.
ErrorApp = Callable[[str, str, int], App]


class BodyGuard:
    """Refuse an oversized body with 413 and a non-strict JSON body with 422, both as the
    API's JSON errors (``error`` builds them), before the app sees the request."""

    def __init__(self, app: App, error: ErrorApp, max_bytes: int = MAX_BODY) -> None:
        self.app, self.error, self.max_bytes = app, error, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._declared_size_refusal(scope)
        body = None if refusal else await self._read(receive)
        if refusal is None and body is None:
            refusal = ("payload_too_large", f"the request body exceeds {self.max_bytes} bytes", 413)
        if refusal is None and body and _json_body(scope):
            refusal = _strictness_refusal(body)
        if refusal is not None:
            await self.error(*refusal)(scope, receive, send)
            return
        await self.app(scope, _replay(body or b"", receive), send)

    def _declared_size_refusal(self, scope: Scope) -> tuple[str, str, int] | None:
        declared = _header(scope, b"content-length")
        if declared is None:
            return None
        if not declared.isdigit():
            return ("http_error", "Content-Length is not a number", 400)
        if int(declared) > self.max_bytes:
            return ("payload_too_large", f"the request body exceeds {self.max_bytes} bytes", 413)
        return None

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (or the client left)."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read already, then what the client sends."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


def _json_body(scope: Scope) -> bool:
    """Whether the app reads this body as JSON (FastAPI does without a content type)."""
    content_type = _header(scope, b"content-type")
    return content_type is None or "json" in content_type.lower()


class _NonFinite(ValueError):
    pass


def _strictness_refusal(body: bytes) -> tuple[str, str, int] | None:
    """A 422 for NaN, Infinity or a number that overflows a float; None otherwise (also
    for malformed JSON, which the app answers itself, naming where it broke)."""
    try:
        json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as exc:
        return ("validation_error", f"the body is not strict JSON: {exc}", 422)
    except ValueError:
        return None
    return None


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"{text} is too large for a number")
    return value
