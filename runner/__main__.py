"""``python -m runner``: the same program as the ``runner`` command."""

from runner.cli import run

run()
