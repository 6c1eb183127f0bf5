"""Grade one submission: start its worker, run the week's tests under pytest, collect a report.

``grade`` runs the hidden tests (with the reference solution available and
points from course.yml); ``check`` runs the public tests the way a student does.
Both return a ``GradeReport`` that serialises to Gradescope's results.json.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import sandbox
from autograder.config import Week
from autograder.plugin import GradingPlugin, TestResult
from autograder.student import StudentProcess

PYTEST_INI = Path(__file__).with_name("grader_pytest.ini")


class GraderError(RuntimeError):
    """The grader itself could not run (a broken test folder, a bad argument)."""


@dataclass
class GradeReport:
    """Everything about one graded submission."""

    week: str
    tests: list[TestResult]
    execution_time: float
    sandbox: str
    student_output: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)

    @property
    def passed(self) -> int:
        return sum(t.status == "passed" for t in self.tests)

    def output_text(self) -> str:
        lines = [
            f"Week {self.week}: {self.score:g} / {self.max_score:g} points, {self.passed}/{len(self.tests)} tests passed."
        ]
        lines += self.notes
        lines.append(f"Isolation: {self.sandbox}.")
        if self.student_output.strip():
            lines.append("Your code printed:\n" + self.student_output)
        return "\n".join(lines)

    def to_gradescope(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "execution_time": round(self.execution_time, 3),
            "output": self.output_text(),
            "tests": [t.to_json() for t in self.tests],
        }


def _run_pytest(test_dir: Path, plugin: GradingPlugin) -> int:
    import pytest

    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    args = [
        str(test_dir),
        "-c", str(PYTEST_INI),
        "--rootdir", str(test_dir),
        "-p", "no:cacheprovider",
        "-p", "no:stepwise",
        "-p", "no:unraisableexception",  # its gc.collect() at exit costs 0.2 s per submission
        "-p", "no:threadexception",
        "-p", "no:logging",  # grading captures nothing through logging
        "--assert=plain",
        "--tb=native",  # the plugin reads the exception itself; pytest's long tracebacks cost 0.4 s per week
        "--import-mode=importlib",
        "-q",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]  # fmt: skip
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = pytest.main(args, plugins=[plugin])
    if int(code) not in (0, 1, 5):  # ok, tests failed, none collected
        raise GraderError(
            f"pytest could not run the tests in {test_dir} (exit {int(code)}):\n{sink.getvalue()[-3000:]}"
        )
    return int(code)


def run_tests(
    week: Week,
    submission: Path,
    test_dir: Path,
    *,
    points: dict[str, float] | None,
    hidden_paths: list[Path],
) -> GradeReport:
    """Grade ``submission`` with the tests in ``test_dir``; the worker starts before pytest imports torch."""
    started = time.monotonic()
    if not submission.is_dir():
        raise GraderError(f"submission folder {submission} does not exist")
    if not test_dir.is_dir():
        raise GraderError(f"test folder {test_dir} does not exist")
    info = sandbox.choose()
    process = StudentProcess(submission, list(week.files), week.limits, hidden_paths=hidden_paths, sandbox_info=info)
    try:
        plugin = GradingPlugin(week, process, points=points, visibility=week.visibility, submission=submission)
        _run_pytest(test_dir, plugin)
    finally:
        process.close()
    if plugin.sandbox_failures:
        raise GraderError(f"the sandbox failed while grading {submission}: {plugin.sandbox_failures[0]}")
    notes = []
    if points is not None:
        missing = sorted(set(points) - set(plugin.collected))
        if missing:
            raise GraderError(f"course.yml lists tests for week {week.id} that do not exist: {', '.join(missing)}")
    missing_files = [name for name in week.files if not (submission / name).is_file()]
    if missing_files:
        notes.append(f"Missing from your submission: {', '.join(missing_files)}.")
    if process.restarts:
        notes.append(f"Your code's process was restarted {process.restarts} time(s) after a timeout or crash.")
    return GradeReport(
        week=week.id,
        tests=plugin.results,
        execution_time=time.monotonic() - started,
        sandbox=info.description,
        student_output=process.output.text(),
        notes=notes,
    )


def hidden_paths(week: Week, extra: list[Path] | None = None) -> list[Path]:
    """What the worker must never see: the whole course repository, plus any class or output folders."""
    return [week.root.resolve(), *(p.resolve() for p in extra or [])]


def grade(week: Week, submission: Path, *, extra_hidden: list[Path] | None = None) -> GradeReport:
    """Grade with the hidden tests and course.yml's points."""
    hidden = hidden_paths(week, [*(extra_hidden or []), submission.resolve().parent])  # classmates too
    return run_tests(week, submission, week.hidden_dir, points=week.tests, hidden_paths=hidden)


def check(week: Week, submission: Path) -> GradeReport:
    """Run the public tests shipped with the assignment (each test worth 1)."""
    return run_tests(week, submission, week.assignment_dir, points=None, hidden_paths=hidden_paths(week))
