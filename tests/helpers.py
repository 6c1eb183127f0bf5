"""Helpers shared by the project's tests (import them; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from autograder import config

REPO = Path(__file__).resolve().parent.parent


def make_submission(folder: Path, week: config.Week, override: str | None, *, replace: str | None = None) -> Path:
    """A submission: the reference file with ``override`` appended (its definitions win), or ``replace`` as the file."""
    folder.mkdir(parents=True)
    source = (
        replace if replace is not None else (week.solution_dir / week.files[0]).read_text() + "\n" + (override or "")
    )
    (folder / week.files[0]).write_text(source)
    return folder
