"""runner: a declarative scheduler and housekeeper.

The library API is :class:`SchedulerService`; every call returns a :class:`Result`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.service import Result, SchedulerService

__all__ = ["Result", "SchedulerService"]
# Where each public name lives. Imported on first use, so that ``runner validate`` and
# ``runner --help`` (which import ``runner.cli``, hence this package) do not pay for the
# database stack the service pulls in.
_LAZY = {"Result": "runner.service", "SchedulerService": "runner.service"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
