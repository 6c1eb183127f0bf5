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
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from autograder import reference, safe_text
from autograder.config import Week
from autograder.proxy import StudentModule
from autograder.results import TestResult, manual_result
from autograder.student_errors import SandboxFailure, StudentCodeError
from autograder.student_process import StudentProcess
from autograder.submission_files import read_submission


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
        self._mistakes: dict[str, str] = {}  # node id -> the known mistake its check recognised
        self.unknown_names: list[str] = []  # course.yml names no collected test has: nothing runs then
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
        keys = {item.nodeid: _points_keys(item) for item in items}
        cases = Counter(key for item in items for key in keys[item.nodeid])
        for item in items:
            qualified, base = keys[item.nodeid]
            self.collected += [base, qualified]
            if self.points is None:
                self._item_points[item.nodeid] = 1.0
            elif base in self.manual:
                self._item_points[item.nodeid] = 0.0
                self._manual_items[item.nodeid] = base
            elif qualified in self.points:
                self._item_points[item.nodeid] = self.points[qualified] / cases[qualified]
            else:
                self._item_points[item.nodeid] = self.points.get(base, 0.0) / cases[base]
        if self.points is not None and self.only is None:
            self.unknown_names = self._unknown_names(items, keys)
            if self.unknown_names:  # course.yml is wrong: run nothing, the grader reports it
                config.hook.pytest_deselected(items=list(items))
                items[:] = []
                return
        if self.only is not None:
            keep = [item for item in items if _result_name(item.nodeid) in self.only]
            config.hook.pytest_deselected(items=[item for item in items if item not in keep])
            items[:] = keep

    def _unknown_names(self, items: list[pytest.Item], keys: dict[str, tuple[str, str]]) -> list[str]:
        """course.yml's test names that match no collected test, or (bare) tests in two files."""
        assert self.points is not None
        files: dict[str, set[str]] = {}
        for qualified, base in keys.values():
            files.setdefault(base, set()).add(qualified.split("::", 1)[0])
            files.setdefault(qualified, set())
        named = set(self.points) | {name for name in self.manual if name.startswith("test_")}
        problems = [f"{name} (no such test)" for name in sorted(named) if name not in files]
        problems += [
            f"{name} (in {' and '.join(sorted(files[name]))}: name the file, `file.py::{name}`)"
            for name in sorted(named)
            if len(files.get(name, ())) > 1
        ]
        return problems

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and report.failed:
            self._messages.setdefault(item.nodeid, feedback(call.excinfo.value))
            mistake = getattr(call.excinfo.value, "mistake", None)
            if isinstance(mistake, str) and mistake:
                self._mistakes.setdefault(item.nodeid, safe_text.clean(mistake[:300]))
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
                passed=passed,
                output=output,
                visibility=self.visibility,
                mistake=None if passed else self._mistakes.get(report.nodeid),
                duration_s=report.duration,
            )
        )


def _result_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[-1]


def _base_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", None) or item.name.split("[", 1)[0]


def _points_keys(item: pytest.Item) -> tuple[str, str]:
    """How course.yml may name an item's test: ``test_file.py::test_name`` or plain ``test_name``."""
    base = _base_name(item)
    return f"{item.path.name}::{base}", base
