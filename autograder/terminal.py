"""What the `course` commands share: the consoles they print to, their usage error, week lookup."""

from __future__ import annotations

import sys

from rich.console import Console

from autograder import config

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False)


class UsageError(RuntimeError):
    pass


def week_named(week_key: str) -> config.Week:
    return config.load().week(week_key)
