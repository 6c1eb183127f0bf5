"""Run a week's hidden tests on code that is already loaded in this process: the otter and nbgrader model.

otter-grader and nbgrader execute the student's notebook or script and then run
the tests *in the same Python process*. To give the same score as ``course
grade``, their test cells call :func:`case_passed`, which runs the week's real
hidden tests (once, cached) against the student's namespace through the same
``student`` proxy API, with an in-process stand-in for the sandboxed worker.

What this cannot give (and ``course grade`` does): isolation. The student's code
shares the process with the tests, so it can read the tests and the reference,
patch the checks, or exit the kernel; time and memory limits are whatever the
host tool enforces. The week handouts and the export README say so.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autograder import audit, config
from autograder.config import Week
from autograder.grading import _run_pytest
from autograder.plugin import GradingPlugin
from autograder.recorded import RecordedOps, RecordedShapes
from autograder.results import GradeReport
from autograder.sandboxed.worker import Worker


class _NoOutput:
    """Printed output is the host tool's business in-process."""

    def text(self) -> str:
        return ""


class InProcessStudent:
    """Stands in for :class:`autograder.student_process.StudentProcess`: requests are served by a Worker in this process.

    Arguments are still cloned on the way in and results on the way out, and the
    ops each call runs are recorded, so hidden tests behave as under ``course grade``.
    """

    restarts = 0

    def __init__(self, modules: Mapping[str, types.ModuleType], week: Week, scratch: Path) -> None:
        self.worker = Worker.from_modules(dict(modules))
        self.scratch = scratch  # the student's code runs here: what it writes (a test checkpoint) lands here
        self.limits = week.limits
        files = {name: getattr(module, "__file__", None) for name, module in modules.items()}
        sources = {f"{name}.py": Path(f).read_bytes() for name, f in files.items() if f and Path(f).is_file()}
        self.escapes = audit.audit_files(sources, [name.removesuffix(".py") for name in week.carried_files])
        self.last_ops = RecordedOps((), self.escapes)
        self.last_shapes = RecordedShapes((), self.escapes)
        self.last_used_global_rng = False
        self.last_peak_bytes: int | None = None
        self.last_readings: dict[str, Any] = {}
        self.output = _NoOutput()

    def request(
        self, message: dict[str, Any], label: str, timeout_s: float | None = None, *, measure_memory: bool = False
    ) -> dict[str, Any]:
        """Serve one request here; peak memory cannot be measured in-process (``last_peak_bytes`` stays None)."""
        self.last_peak_bytes = None
        with contextlib.chdir(
            self.scratch
        ):  # only for the call: the caller's directory is back before anything else runs
            reply = self.worker.handle(message)
        self.last_readings = reply.get("instruments", {})
        self.last_ops = RecordedOps((str(op) for op in self.last_readings.get("ops", [])), self.escapes)
        self.last_shapes = RecordedShapes(
            (tuple(shape) for shape in self.last_readings.get("shapes", [])), self.escapes
        )
        self.last_used_global_rng = reply.get("global_rng") is True
        return reply

    def count_failure(self, label: str) -> None:
        """No restarts in-process: a hang hangs the host tool, which must enforce its own timeout."""

    def close(self) -> None:
        self.worker.objects.clear()


def module_from_namespace(name: str, namespace: Mapping[str, Any]) -> types.ModuleType:
    """A module object whose attributes are a notebook's or script's globals."""
    module = types.ModuleType(name)
    module.__dict__.update({key: value for key, value in namespace.items() if not key.startswith("__")})
    return module


def grade_in_process(
    week: Week, modules: Mapping[str, types.ModuleType], submission: Path | None = None
) -> GradeReport:
    """Run ``week``'s hidden tests against already-loaded student modules (keyed by module name).

    ``submission`` is the folder holding the files a lab hands in beside the code (a report,
    a plot, a log, a checkpoint), read by the ``handed_in`` fixture exactly as under ``course
    grade``; ``None`` hands in nothing.
    """
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="course-inprocess-"))
    process = InProcessStudent(modules, week, scratch)
    plugin = GradingPlugin(
        week,
        process,  # type: ignore[arg-type]
        points=week.tests,
        visibility=week.visibility,
        submission=submission,
    )
    try:
        _run_pytest(week.hidden_dir, plugin)
    finally:
        process.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return GradeReport(
        week=week.id,
        tests=plugin.results,
        execution_time=time.monotonic() - started,
        sandbox="none: the tests ran in the same process as the student's code",
    )


_CACHE: dict[tuple[Any, ...], dict[str, tuple[bool, str]]] = {}


def _fingerprint(namespace: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """The student's functions and classes, by name and identity.

    Otter hands each test a copy of the submission's globals (other values get new
    ids), and doctests add names of their own; functions and classes stay the same.
    """
    code = (types.FunctionType, type)
    return tuple(sorted((name, id(value)) for name, value in namespace.items() if isinstance(value, code)))


def case_results(week_id: str, namespace: Mapping[str, Any], root: str | None = None) -> dict[str, tuple[bool, str]]:
    """``{test case name: (passed, feedback)}`` for the student code in ``namespace``; computed once per namespace.

    A week of several files (09: ``flash.py`` and ``flash_triton.py``) is one notebook, so each
    of its modules is the same namespace. A lab's hand-in files (``report.md``,
    ``loss_curve.png``, ...) are read from the working directory, where nbgrader and otter run
    the notebook: the student's submission folder.
    """
    key = (week_id, root, _fingerprint(namespace))
    if key not in _CACHE:
        course = config.load(Path(root) if root else None)
        week = course.week(week_id)
        modules = {name: module_from_namespace(name, namespace) for name in week.modules}
        report = grade_in_process(week, modules, submission=Path.cwd())
        _CACHE[key] = {test.name: (test.passed, test.output) for test in report.tests}
    return _CACHE[key]


def case_failure(week_id: str, case: str, namespace: Mapping[str, Any], root: str | None = None) -> str | None:
    """Why hidden test case ``case`` fails on the code in ``namespace`` (``None`` when it passes)."""
    results = case_results(week_id, namespace, root)
    if case not in results:
        return f"{case}: this test did not run"
    passed, output = results[case]
    return None if passed else f"{case}: {output}"


def case_passed(week_id: str, case: str, namespace: Mapping[str, Any], root: str | None = None) -> bool:
    """True when hidden test case ``case`` passes on the code in ``namespace``; prints the feedback when not."""
    failure = case_failure(week_id, case, namespace, root)
    if failure is not None:
        print(failure, file=sys.stderr)
    return failure is None


def assert_case(week_id: str, case: str, namespace: Mapping[str, Any], root: str | None = None) -> None:
    """Raise ``AssertionError`` with the feedback unless hidden test case ``case`` passes (nbgrader's test cells)."""
    failure = case_failure(week_id, case, namespace, root)
    if failure is not None:
        raise AssertionError(failure)
