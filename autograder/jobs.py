"""One grading job, as every engine runs it: the local pool (``batch``) and Dask workers (``scale``).

``grade_one`` grades a submission in a grader process and returns its typed report;
``Outcome`` is what an engine yields for it; the fingerprints decide whether a re-run may
keep a previous result.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from autograder import config
from autograder.results import GradeReport


@dataclass
class Outcome:
    """One submission's report, or the reason grading failed."""

    name: str
    path: Path
    report: GradeReport | None
    error: str | None = None
    cached: bool = False


def grade_one(root: str, week_id: str, submission: str, extra_hidden: list[str], public: bool) -> GradeReport:
    """Runs in a grader process of the pool."""
    from autograder import grading

    week = config.load(Path(root)).week(week_id)
    if public:
        return grading.check(week, Path(submission)).portable()
    return grading.grade(week, Path(submission), extra_hidden=[Path(p) for p in extra_hidden]).portable()


def init_grader_process() -> None:
    import torch

    torch.set_num_threads(1)  # graders run side by side; and no OpenMP pool crosses a fork


def grader_fingerprint(week: config.Week) -> str:
    """Changes whenever anything that decides a grade changes: tests, solutions, engine, course.yml."""
    digest = hashlib.sha256()
    engine = Path(__file__).parent
    sources = [week.root / config.CONFIG_NAME, *sorted(engine.glob("*.py")), *sorted(engine.glob("*.ini"))]
    sources += sorted((engine / "sandboxed").glob("*.py"))  # what runs beside the student's code
    for folder in (week.hidden_dir, week.solution_dir, *(earlier.solution_dir for earlier in week.carried)):
        sources += sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in sources:
        digest.update(str(path.relative_to(week.root) if path.is_relative_to(week.root) else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def submission_fingerprint(week: config.Week, folder: Path, grader: str) -> str:
    """Changes whenever anything handed in changes: every file of the folder (a lab's report, log or
    checkpoint as much as the code), a file added or deleted, and the course version."""
    from autograder import __version__

    digest = hashlib.sha256(f"{grader}\0{__version__}".encode())
    names = sorted({*week.files, *(p.name for p in folder.iterdir())} if folder.is_dir() else set(week.files))
    for name in names:
        path = folder / name
        digest.update(name.encode() + b"\0")
        if path.is_symlink():
            digest.update(b"\0symlink" + os.readlink(path).encode())
        elif path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        elif path.is_dir():
            digest.update(b"\0folder")  # handed_in reads top-level files only; a folder is never read
        else:
            digest.update(b"\0missing")
    return digest.hexdigest()
