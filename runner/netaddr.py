"""Network addresses as config and the API read them: ``host:port`` and loopback.

One definition each, so validation (may the API listen here without a token?) and the
API's Host check (DNS rebinding) cannot disagree about what is local. Pure.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ``::1``), bracketed
    or not: ``127.0.0.2``, ``[::1]``. False for ``0.0.0.0``, ``::`` and every other name."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) → (host without brackets, port).

    Raises :class:`ValueError` when the port is not a number."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def host_of(header: str) -> str:
    """The host part of an HTTP ``Host`` header: ``[::1]:8080`` → ``::1``,
    ``localhost:80`` → ``localhost``, ``127.0.0.1`` → ``127.0.0.1``."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.partition(":")[0]
