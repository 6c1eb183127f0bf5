"""`course export otter`: the real `otter run` on the exported autograder gives `course grade`'s score."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import config
from autograder.export import otter
from tests.helpers import REPO

pytest.importorskip("otter", reason="the export extra (otter-grader) is not installed")

WEEK = "01-attention"
SUBMISSION = REPO / "examples" / "class-01" / "bob" / "attention.py"  # loses points: no 1/sqrt(d) scale


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    course = config.load(REPO)
    folder = tmp_path_factory.mktemp("otter")
    otter.export(course, course.week(WEEK), folder)
    return folder


def test_one_ok_test_per_hidden_case_with_course_points(exported):
    week = config.load(REPO).week(WEEK)
    tests = sorted((exported / "tests").glob("q*.py"))
    assert len(tests) == 37
    total = 0.0
    for path in tests:
        namespace: dict = {}
        exec(path.read_text(), namespace)
        assert namespace["OK_FORMAT"] is True
        total += namespace["test"]["points"]
        assert "case_passed" in namespace["test"]["suites"][0]["cases"][0]["code"]
    assert total == pytest.approx(sum(week.tests.values()))
    names = set(zipfile.ZipFile(exported / "autograder.zip").namelist())
    assert "tests/q000.py" in names
    assert f"files/course/autograder/hidden/{WEEK}/test_attention.py" in names
    assert not [n for n in names if "mutants" in n or "/solutions/02" in n]


def otter_run(autograder_zip: Path, submission: Path, out: Path) -> list[dict]:
    """``otter run -a autograder.zip submission``: the per-test results it writes to ``out/results.json``."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "otter"), "run", "-a", str(autograder_zip), str(submission)]
        + ["-o", str(out), "--no-logo"],
        capture_output=True,
        text=True,
        cwd=out,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tests: list[dict] = json.loads((out / "results.json").read_text())["tests"]
    return tests


@pytest.mark.slow
def test_otter_run_gives_course_grades_score(exported, tmp_path):
    submission = tmp_path / SUBMISSION.name
    shutil.copy(SUBMISSION, submission)
    tests = otter_run(exported / "autograder.zip", submission, tmp_path)
    score = sum(test.get("score") or 0 for test in tests)

    out = tmp_path / "course.json"
    subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", WEEK, str(SUBMISSION.parent), "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=REPO,
        timeout=300,
    )
    expected = json.loads(out.read_text())
    assert 0 < expected["score"] < expected["max_score"]
    assert score == pytest.approx(expected["score"], abs=1e-3)


@pytest.mark.slow
def test_a_later_week_runs_with_the_earlier_modules_beside_the_submission(tmp_path):
    course = config.load(REPO)
    week = course.week("04")
    folder = tmp_path / "export"
    otter.export(course, week, folder)
    names = set(zipfile.ZipFile(folder / "autograder.zip").namelist())
    assert "files/multihead/__init__.py" in names  # otter copies support files beside the submission
    submission = tmp_path / "block.py"
    shutil.copy(week.solution_dir / "block.py", submission)  # `from multihead import ...` must resolve
    tests = otter_run(folder / "autograder.zip", submission, tmp_path)
    assert sum(test.get("score") or 0 for test in tests) == pytest.approx(week.max_score, abs=1e-3)
