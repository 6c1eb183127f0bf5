"""Typed results: what the plugin records (passed, mistake, timing), course.yml names checked before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autograder import grading
from autograder.results import GradeReport, TestResult
from tests.helpers import make_submission

MISTAKE_TESTS = """
import torch
from autograder.checks import assert_close


def test_recognised():
    assert_close(torch.zeros(3), torch.ones(3), name="y", mistakes={"returned zeros": torch.zeros(3)})


def test_unrecognised():
    assert_close(torch.full((3,), 2.0), torch.ones(3), name="y", mistakes={"returned zeros": torch.zeros(3)})


def test_fine():
    pass
"""


def hidden_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "hidden"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def run(week01, tmp_path: Path, files: dict[str, str], points: dict[str, float]) -> GradeReport:
    submission = make_submission(tmp_path / "alice", week01, None)
    return grading.run_tests(
        week01,
        submission,
        hidden_folder(tmp_path, files),
        points=points,
        hidden_paths=grading.hidden_paths(week01),
    )


def test_a_recognised_mistake_is_a_field_of_the_result_not_parsed_from_text(week01, tmp_path):
    points = {"test_recognised": 1, "test_unrecognised": 1, "test_fine": 1}
    report = run(week01, tmp_path, {"test_results_mistakes.py": MISTAKE_TESTS}, points)
    by_name = {t.name: t for t in report.tests}
    assert [by_name[n].passed for n in points] == [False, False, True]
    assert by_name["test_recognised"].mistake == "returned zeros"
    assert "Hint: your result matches a common mistake: returned zeros" in by_name["test_recognised"].output
    assert by_name["test_unrecognised"].mistake is None
    assert by_name["test_fine"].mistake is None
    assert by_name["test_fine"].duration_s >= 0
    assert report.first_problem() == "returned zeros"
    assert report.passed == 1
    assert [t.name for t in report.failed] == ["test_recognised", "test_unrecognised"]


def test_a_course_yml_name_with_no_test_stops_grading_before_any_test_runs(week01, tmp_path):
    marker = tmp_path / "ran"
    files = {"test_results_marker.py": f"def test_real():\n    open({str(marker)!r}, 'w').close()\n"}
    with pytest.raises(grading.GraderError, match=r"test_typo \(no such test\)"):
        run(week01, tmp_path, files, {"test_real": 1, "test_typo": 2})
    assert not marker.exists()


def test_a_bare_name_in_two_files_is_ambiguous_and_file_keys_give_each_its_points(week01, tmp_path):
    files = {"test_twin_a.py": "def test_same():\n    pass\n", "test_twin_b.py": "def test_same():\n    assert False\n"}
    with pytest.raises(grading.GraderError, match=r"test_same \(in test_twin_a.py and test_twin_b.py"):
        run(week01, tmp_path, files, {"test_same": 1})
    (tmp_path / "again").mkdir()
    report = run(week01, tmp_path / "again", files, {"test_twin_a.py::test_same": 1, "test_twin_b.py::test_same": 3})
    assert sorted((t.max_score, t.score, t.passed) for t in report.tests) == [(1, 1, True), (3, 0, False)]


def test_a_report_survives_the_cache_as_plain_data():
    report = GradeReport(
        "01",
        [TestResult("test_x[a]", 0.5, 1.0, False, "wrong", mistake="zeros", duration_s=0.25)],
        1.5,
        "bubblewrap",
        notes=["a note"],
        manual=[TestResult("report", 0.0, 0.0, True, "graded by hand")],
    )
    again = GradeReport.from_dict(report.to_dict())
    assert again == report
    assert again.to_gradescope()["tests"][0]["status"] == "failed"
