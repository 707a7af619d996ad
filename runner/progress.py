"""Progress for a person waiting at a terminal, and nothing at all otherwise.

``runner apply`` of a large config and ``runner cleanup`` of a large tree take a while;
on a terminal they show what they are doing (rich draws it on stderr and erases it when
done). When stderr is not a terminal (CI, a pipe, a log file) nothing extra is written,
so output stays exactly as before. rich is imported only when it will draw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TextIO


class Steps:
    """What a command reports as it goes: the phase it is in, and units of work done."""

    def __init__(
        self,
        phase: Callable[[str], None] = lambda _text: None,
        done: Callable[[], None] = lambda: None,
        total: Callable[[int], None] = lambda _units: None,
    ) -> None:
        self.phase = phase
        self.done = done
        self.total = total  # the units of work, once the one doing it knows


@contextlib.contextmanager
def shown(stream: TextIO, text: str, total: int | None = None) -> Iterator[Steps]:
    """Show ``text`` (with a bar of ``total`` units, or a spinner) while the block runs,
    on ``stream`` when it is a terminal; else report into nothing."""
    if not stream.isatty():
        yield Steps()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(file=stream), transient=True) as progress:
        task = progress.add_task(text, total=total)
        yield Steps(
            phase=lambda phase: progress.update(task, description=phase),
            done=lambda: progress.advance(task),
            total=lambda units: progress.update(task, total=units),
        )
