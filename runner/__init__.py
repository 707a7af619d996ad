"""runner: a declarative scheduler and housekeeper.

The library API is :class:`SchedulerService`; every call returns a :class:`Result`.
"""

from runner.service import Result, SchedulerService

__all__ = ["Result", "SchedulerService"]
