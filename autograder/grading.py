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
from collections.abc import Callable
from pathlib import Path

from autograder import sandbox
from autograder.config import Week
from autograder.plugin import GradingPlugin
from autograder.reference import CarriedModule, carried_modules, own_folders
from autograder.results import GradeReport, manual_result
from autograder.student_process import StudentProcess

PYTEST_INI = Path(__file__).with_name("grader_pytest.ini")


class GraderError(RuntimeError):
    """The grader itself could not run (a broken test folder, a bad argument)."""


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
    carried: list[CarriedModule] | None = None,
    only: set[str] | None = None,
) -> GradeReport:
    """Grade ``submission`` with the tests in ``test_dir``; the worker starts before pytest imports torch.

    ``carried``: the earlier weeks' modules written beside the student's files (read-only).
    ``only``: run just these tests (result names), e.g. to re-check failures with other modules.
    """
    started = time.monotonic()
    if not submission.is_dir():
        raise GraderError(f"submission folder {submission} does not exist")
    if not test_dir.is_dir():
        raise GraderError(f"test folder {test_dir} does not exist")
    info = sandbox.choose()
    carried = carried or []
    process = StudentProcess(
        submission,
        list(week.files),
        week.limits,
        hidden_paths=hidden_paths,
        sandbox_info=info,
        carried={module.name: module.read(week.limits.max_file_mb) for module in carried if module.path.is_file()},
        audited_carried=frozenset(module.name for module in carried if module.own),
    )
    try:
        plugin = GradingPlugin(
            week, process, points=points, visibility=week.visibility, submission=submission, only=only
        )
        _run_pytest(test_dir, plugin)
    finally:
        process.close()
    if plugin.sandbox_failures:
        raise GraderError(f"the sandbox failed while grading {submission}: {plugin.sandbox_failures[0]}")
    if plugin.unknown_names:
        raise GraderError(
            f"course.yml names tests for week {week.id} that it cannot give points to (nothing was run): "
            + ", ".join(plugin.unknown_names)
        )
    notes = []
    missing_files = [name for name in week.files if not (submission / name).is_file()]
    if missing_files:
        notes.append(f"Missing from your submission: {', '.join(missing_files)}.")
    absent = [f"{m.describe()} (put yours in {m.week.assignment_dir})" for m in carried if not m.path.is_file()]
    if absent:
        notes.append(f"Earlier weeks' modules this week imports were not found: {', '.join(absent)}.")
    own = [module.describe() for module in carried if module.own]
    if own:
        notes.append(f"Graded with your own earlier modules: {', '.join(own)}.")
    if process.restarts:
        notes.append(f"Your code's process was restarted {process.restarts} time(s) after a timeout or crash.")
    return GradeReport(
        week=week.id,
        tests=plugin.results,
        execution_time=time.monotonic() - started,
        sandbox=info.description,
        student_output=process.output.text(),
        notes=notes,
        carried=carried,
        manual=[
            *plugin.manual_results,
            *(manual_result(name, pts, None) for name, pts in plugin.manual.items() if name not in plugin.collected),
        ],
    )


def attribute_failures(report: GradeReport, rerun: Callable[[list[CarriedModule], set[str]], GradeReport]) -> None:
    """Tell failures caused by the student's own earlier modules from failures of this week's code.

    Each failed test is run again with the reference in place of every own module: a test
    that then passes failed because of an earlier week. With several own modules, each is
    then tried alone (the others the reference) to name the one at fault. The verdict goes
    into the test's ``blame`` and its feedback; scores are not changed.
    """
    carried = report.carried
    own = [module for module in carried if module.own]
    failed = {t.name for t in report.failed}
    if not own or not failed:
        return

    def references_for(keep: CarriedModule | None) -> list[CarriedModule]:
        return [
            m if m is keep or not m.own else CarriedModule(m.name, m.week, m.week.reference_file(m.name), own=False)
            for m in carried
        ]

    def passing(modules: list[CarriedModule], names: set[str]) -> set[str]:
        return {t.name for t in rerun(modules, names).tests if t.passed}

    earlier = passing(references_for(None), failed)  # these fail only with the student's earlier modules
    if not earlier:
        return
    culprits: dict[str, list[CarriedModule]] = {name: own if len(own) == 1 else [] for name in earlier}
    if len(own) > 1:
        for module in own:
            for name in earlier - passing(references_for(module), earlier):
                culprits[name].append(module)
    for test in report.tests:
        if test.name not in earlier:
            continue
        at_fault = culprits[test.name] or own  # only their combination fails
        weeks = ", ".join(dict.fromkeys(f"week {m.week.id}" for m in at_fault))
        files = ", ".join(m.name for m in at_fault)
        test.blame = at_fault[0].week.id
        test.output = (
            f"{test.output}\nThis test passes with the reference {files} in place of yours: the problem is in "
            f"your {weeks} code, not this week's. Revisit {weeks}."
        )


def hidden_paths(week: Week, extra: list[Path] | None = None) -> list[Path]:
    """What the worker must never see: the whole course repository, plus any class or output folders."""
    return [week.root.resolve(), *(p.resolve() for p in extra or [])]


def grade(week: Week, submission: Path, *, extra_hidden: list[Path] | None = None) -> GradeReport:
    """Grade with the hidden tests and course.yml's points.

    The earlier weeks' modules come from the reference solutions (``carry: reference``) or,
    with ``carry: student``, from the submission folder where the student handed them in;
    failures then say whether they come from this week's code or from an earlier week.
    """
    hidden = hidden_paths(week, [*(extra_hidden or []), submission.resolve().parent])  # classmates too
    own = [submission] if week.carry == "student" else []
    carried = carried_modules(week, own, limit_mb=week.limits.max_file_mb)

    def run(modules: list[CarriedModule], only: set[str] | None = None) -> GradeReport:
        return run_tests(
            week, submission, week.hidden_dir, points=week.tests, hidden_paths=hidden, carried=modules, only=only
        )

    report = run(carried)
    attribute_failures(report, run)
    return report


def check(week: Week, submission: Path, *, provided: bool = False) -> GradeReport:
    """Run the public tests shipped with the assignment (each test worth 1).

    The earlier modules are the student's own (beside the week's files or in their own week's
    folder) unless ``provided``: then the earlier weeks' reference files shipped with the
    student edition, where there are any. Failures that pass with the provided (or, in the
    instructors' repository, the reference) modules say which earlier week to revisit.
    """
    hidden = hidden_paths(week)
    own = [] if provided else own_folders(week, submission)
    carried = carried_modules(week, own, limit_mb=week.limits.max_file_mb)

    def run(modules: list[CarriedModule], only: set[str] | None = None) -> GradeReport:
        return run_tests(
            week, submission, week.assignment_dir, points=None, hidden_paths=hidden, carried=modules, only=only
        )

    report = run(carried)
    if all(m.week.reference_file(m.name).is_file() for m in carried if m.own):
        attribute_failures(report, run)
    return report


def earlier_checks(report: GradeReport) -> list[tuple[CarriedModule, GradeReport]]:
    """For a check with failures: each own earlier module's own week's public checks, where some fail there too."""
    if not report.failed:
        return []
    found = []
    for module in report.carried:
        if module.own and module.week.assignment_dir.is_dir():
            earlier = check(module.week, module.path.parent)
            if earlier.failed:
                found.append((module, earlier))
    return found
