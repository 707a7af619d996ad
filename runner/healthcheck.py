"""The container's health probe (``runner healthcheck``): does the API answer ``/healthz``?

A probe from inside the container reaches the API on loopback whatever address it listens
on, so a wildcard ``listen`` (``0.0.0.0``, ``::``) is asked through ``127.0.0.1``/``::1``.
Without ``settings.api.listen`` there is nothing to ask: the process being alive is the
health, and that is the container runtime's to see.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from runner.netaddr import split_listen
from runner.specs import ApiSettings

WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def probe_url(listen: str) -> str:
    """The ``/healthz`` URL a local probe uses for an API listening on ``listen``."""
    host, port = split_listen(listen)
    host = WILDCARDS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def probe(api: ApiSettings, timeout: float = 5.0) -> str | None:
    """None when healthy (or when there is no API to ask); else what is wrong."""
    if not api.listen:
        return None
    url = probe_url(api.listen)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    return None if status == 200 else f"{url}: HTTP {status}"
