"""Helpers shared by the project's tests (import them; fixtures live in conftest.py)."""

from __future__ import annotations

import types
from pathlib import Path

from autograder import config
from autograder.inputs import randn  # seeded, drawn in float64 then cast: the hidden tests' own inputs

REPO = Path(__file__).resolve().parent.parent

__all__ = ["REPO", "make_submission", "randn"]


def make_submission(folder: Path, week: config.Week, override: str | None, *, replace: str | None = None) -> Path:
    """A submission: the reference file with ``override`` appended (its definitions win), or ``replace`` as the file."""
    folder.mkdir(parents=True)
    source = (
        replace if replace is not None else (week.solution_dir / week.files[0]).read_text() + "\n" + (override or "")
    )
    (folder / week.files[0]).write_text(source)
    return folder


def hidden_tests(week_folder: str, name: str) -> types.SimpleNamespace:
    """Every module-level name of a week's hidden test files (``autograder/hidden/NN-slug/test_*.py``), as one namespace.

    For project tests that reuse a week's hidden constants and helpers; each file is loaded by path under
    ``{name}_{stem}`` (unique names: pytest caches modules by name).
    """
    from autograder import reference

    merged: dict[str, object] = {}
    for path in sorted((REPO / "autograder" / "hidden" / week_folder).glob("test_*.py")):
        module = reference.load_file(path, name=f"{name}_{path.stem}")
        merged.update({key: value for key, value in vars(module).items() if not key.startswith("__")})
    return types.SimpleNamespace(**merged)
