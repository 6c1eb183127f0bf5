"""The `handed_in` fixture: hidden tests read a lab's report, plots and logs from the submission, safely."""

from __future__ import annotations

import os
import textwrap

from autograder import grading
from tests.helpers import REPO, make_submission

TESTS = """
def test_report(handed_in):
    report = handed_in("report.md")
    assert report is not None and report.startswith(b"# My report"), "report.md is missing"


def test_symlink_is_not_followed(handed_in):
    assert handed_in("secret.md") is None


def test_no_paths_outside_the_folder(handed_in):
    assert handed_in("../outside.txt") is None
    assert handed_in("sub/inner.md") is None


def test_missing_file(handed_in):
    assert handed_in("plot.png") is None
"""


def test_handed_in_reads_regular_files_of_the_submission_only(week01, tmp_path):
    tests = tmp_path / "hidden"
    tests.mkdir()
    (tests / "test_lab.py").write_text(textwrap.dedent(TESTS))
    submission = make_submission(tmp_path / "class" / "alice", week01, None)
    (submission / "report.md").write_text("# My report\n\nLoss went down.\n")
    (tmp_path / "class" / "outside.txt").write_text("not yours")
    os.symlink(REPO / "course.yml", submission / "secret.md")
    (submission / "sub").mkdir()
    (submission / "sub" / "inner.md").write_text("nested")
    points = {
        "test_report": 1,
        "test_symlink_is_not_followed": 1,
        "test_no_paths_outside_the_folder": 1,
        "test_missing_file": 1,
    }
    report = grading.run_tests(week01, submission, tests, points=points, hidden_paths=grading.hidden_paths(week01))
    assert {t.name: t.passed for t in report.tests} == dict.fromkeys(
        ["test_report", "test_symlink_is_not_followed", "test_no_paths_outside_the_folder", "test_missing_file"],
        True,
    )
