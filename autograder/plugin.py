"""The pytest plugin that turns a test folder into a grade.

Registered per run with ``pytest.main(args, plugins=[GradingPlugin(...)])``. It
provides the fixtures tests use:

* ``student``: a ``StudentModule`` proxy for the week's first file (its other
  files via ``student_files["name"]``); every call runs in the worker process.
* ``reference``: the reference solution, imported in this trusted process
  (hidden tests only).

and collects one ``TestResult`` per test item, with points from ``course.yml``
split evenly across a parametrized test's cases. A hidden test course.yml grades
by hand (``manual:``) runs for its feedback only: it goes to ``manual_results``,
worth nothing here, and a person gives its points.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from autograder import reference, safe_text
from autograder.config import Week
from autograder.student import SandboxFailure, StudentCodeError, StudentModule, StudentProcess, read_submission


@dataclass
class TestResult:
    """One graded test case, in Gradescope's terms."""

    name: str
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str
    visibility: str = "visible"
    blame: str | None = None  # the earlier week whose module (the student's own) made this test fail

    __test__ = False  # not a pytest test class

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "status": self.status,
            "output": self.output,
            "visibility": self.visibility,
        }


def feedback(exc: BaseException) -> str:
    """The message a student sees for a failed test: never the test's source, never a terminal escape."""
    if isinstance(exc, (StudentCodeError, AssertionError)):
        text = str(exc) or "a check failed"
    else:
        text = f"the grader could not check your result ({type(exc).__name__}: {exc})"
    return safe_text.clean(text[:3000])


def load_reference(week: Week, file: str | None = None) -> ModuleType:
    """Import one of the week's solution files (the first by default), its earlier weeks' references under it."""
    return reference.load(week, file)


class GradingPlugin:
    """Runs one submission's tests; see the module docstring."""

    def __init__(
        self,
        week: Week,
        process: StudentProcess,
        *,
        points: dict[str, float] | None,
        visibility: str,
        submission: Path | None = None,
        only: set[str] | None = None,
    ) -> None:
        self.week = week
        self.only = only  # result names to run (a rerun of some failures); None: every test
        self.submission = submission
        self.process = process
        self.points = points  # None: every test is worth 1 (public checks)
        self.visibility = visibility
        self.results: list[TestResult] = []
        # hidden tests course.yml grades by hand (``manual:``): run for feedback, scored by a person
        self.manual = dict(week.manual) if points is not None else {}
        self.manual_results: list[TestResult] = []
        self.collected: list[str] = []
        self._item_points: dict[str, float] = {}
        self._messages: dict[str, str] = {}
        self._manual_items: dict[str, str] = {}  # node id -> its test's name in ``manual``
        self.sandbox_failures: list[str] = []  # the grade cannot stand when this is not empty

    # -- fixtures -------------------------------------------------------------
    @pytest.fixture(scope="session")
    def student(self) -> StudentModule:
        return StudentModule(self.process, self.week.modules[0])

    @pytest.fixture(scope="session")
    def student_files(self) -> dict[str, StudentModule]:
        return {name: StudentModule(self.process, name) for name in self.week.modules}

    @pytest.fixture(scope="session")
    def handed_in(self) -> Callable[[str], bytes | None]:
        """``handed_in("report.md")``: the bytes of a file the student handed in beside their code, or None.

        For labs (reports, plots, logs, checkpoints). Read here, never executed:
        only regular files directly in the submission folder (no symlinks, no
        sub-folders), at most ``limits.max_file_mb`` each.
        """

        def read(name: str) -> bytes | None:
            if self.submission is None or "/" in name or "\\" in name or name in ("", ".", ".."):
                return None
            found = read_submission([name], self.submission, self.week.limits.max_file_mb)
            return found.get(name)

        return read

    @pytest.fixture(scope="session")
    def reference(self) -> ModuleType:
        if self.points is None:
            raise RuntimeError("the reference solution is not available to public tests")
        return load_reference(self.week)

    # -- hooks ----------------------------------------------------------------
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        cases = Counter(_base_name(item) for item in items)
        for item in items:
            base = _base_name(item)
            self.collected.append(base)
            if self.points is None:
                self._item_points[item.nodeid] = 1.0
            elif base in self.manual:
                self._item_points[item.nodeid] = 0.0
                self._manual_items[item.nodeid] = base
            else:
                self._item_points[item.nodeid] = self.points.get(base, 0.0) / cases[base]
        if self.only is not None:
            keep = [item for item in items if _result_name(item.nodeid) in self.only]
            config.hook.pytest_deselected(items=[item for item in items if item not in keep])
            items[:] = keep

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and report.failed:
            self._messages.setdefault(item.nodeid, feedback(call.excinfo.value))
            if isinstance(call.excinfo.value, SandboxFailure):
                self.sandbox_failures.append(str(call.excinfo.value))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        failed_early = report.when == "setup" and not report.passed
        if report.when != "call" and not failed_early:
            return
        passed = report.passed and report.when == "call"
        points = self._item_points.get(report.nodeid, 0.0)
        if report.skipped:
            return  # e.g. a GPU-only case on a CPU machine: not graded here
        output = "passed" if passed else self._messages.get(report.nodeid, "failed")
        if report.nodeid in self._manual_items:
            self.manual_results.append(
                manual_result(
                    _result_name(report.nodeid), self.manual[self._manual_items[report.nodeid]], passed, output
                )
            )
            return
        self.results.append(
            TestResult(
                name=_result_name(report.nodeid),
                score=points if passed else 0.0,
                max_score=points,
                status="passed" if passed else "failed",
                output=output,
                visibility=self.visibility,
            )
        )


def manual_result(name: str, points: float, checked: bool | None, output: str = "") -> TestResult:
    """An item a person grades (``manual:`` in course.yml): listed with the results, worth nothing here.

    ``checked``: how the hidden test of that name went (its check of the format only), or None
    where there is no such test.
    """
    if checked is None:
        check = "no automatic check"
    elif checked:
        check = "the autograder's check of its form passed"
    else:
        check = f"the autograder's check of its form failed: {output}"
    return TestResult(
        name=name,
        score=0.0,
        max_score=0.0,
        status="passed" if checked is not False else "failed",
        output=f"graded by hand ({points:g} points, not part of the autograder's score); {check}",
        visibility="visible",
    )


def _result_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def _base_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", None) or item.name.split("[", 1)[0]
