"""`course export gradescope`: the zip, unpacked as Gradescope lays out /autograder, grades like `course grade`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from autograder import config
from autograder.export import gradescope
from tests.helpers import REPO

WEEK = "01-attention"
SUBMISSION = REPO / "examples" / "class-01" / "bob"  # loses points: no 1/sqrt(d) scale


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    course = config.load(REPO)
    return gradescope.export(course, course.week(WEEK), tmp_path_factory.mktemp("export") / "autograder.zip")


def gradescope_layout(zip_path: Path, base: Path, submission: Path | None) -> Path:
    """/autograder as Gradescope prepares it: source/ (the unzipped zip), run_autograder, submission/, results/."""
    root = base / "autograder"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    if submission is not None:
        shutil.copytree(submission, root / "submission")
    (root / "results").mkdir()
    return root


def run_autograder(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "COURSE_PYTHON": sys.executable}
    env.pop("COURSE_ROOT", None)
    return subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True, env=env, timeout=300)


def without_time(results: dict) -> dict:
    return {key: value for key, value in results.items() if key != "execution_time"}


def test_zip_holds_only_what_the_week_needs(autograder_zip):
    names = set(zipfile.ZipFile(autograder_zip).namelist())
    assert {"setup.sh", "run_autograder", "course.yml", "pyproject.toml", "README.md"} <= names
    assert "autograder/cli.py" in names
    assert "autograder/grader_pytest.ini" in names
    assert f"autograder/hidden/{WEEK}/test_attention.py" in names
    assert f"solutions/{WEEK}/attention.py" in names
    leaked = [n for n in names if "mutants/" in n or "public/" in n or n.startswith(("solutions/02", "tests/"))]
    assert leaked == []
    assert not [n for n in names if n.startswith("autograder/hidden/") and WEEK not in n]
    info = zipfile.ZipFile(autograder_zip).getinfo("run_autograder")
    assert (info.external_attr >> 16) & 0o111, "run_autograder must be executable"


def test_zip_is_reproducible(autograder_zip, tmp_path):
    course = config.load(REPO)
    again = gradescope.export(course, course.week(WEEK), tmp_path / "again.zip")
    assert again.read_bytes() == autograder_zip.read_bytes()


@pytest.mark.slow
def test_run_autograder_writes_what_course_grade_writes(autograder_zip, tmp_path):
    root = gradescope_layout(autograder_zip, tmp_path, SUBMISSION)
    result = run_autograder(root)
    assert result.returncode == 0, result.stderr
    exported = json.loads((root / "results" / "results.json").read_text())

    direct_out = tmp_path / "direct.json"
    direct = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", WEEK, str(SUBMISSION), "--out", str(direct_out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert direct.returncode == 0, direct.stderr
    expected = json.loads(direct_out.read_text())
    assert 0 < expected["score"] < expected["max_score"]
    assert without_time(exported) == without_time(expected)


@pytest.mark.slow
def test_run_autograder_reports_a_grader_failure_as_zero(autograder_zip, tmp_path):
    root = gradescope_layout(autograder_zip, tmp_path, None)  # no submission folder: `course grade` exits 2
    result = run_autograder(root)
    assert result.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0
    assert "could not run" in results["output"]


@pytest.fixture(scope="module")
def block_zip(tmp_path_factory) -> Path:
    course = config.load(REPO)
    return gradescope.export(course, course.week("04"), tmp_path_factory.mktemp("export04") / "autograder.zip")


def test_zip_of_a_later_week_carries_the_modules_it_imports(block_zip):
    names = set(zipfile.ZipFile(block_zip).namelist())
    assert "solutions/02-multihead/multihead.py" in names  # block.py imports it
    assert not [n for n in names if n.startswith(("autograder/hidden/02", "solutions/01", "solutions/03"))]
    data = yaml.safe_load(zipfile.ZipFile(block_zip).read("course.yml"))
    assert [(w["id"], bool(w["tests"])) for w in data["weeks"]] == [("02-multihead", False), ("04-block", True)]


@pytest.mark.slow
def test_a_later_week_grades_on_gradescope_with_the_reference_earlier_modules(block_zip, tmp_path):
    root = gradescope_layout(block_zip, tmp_path, REPO / "solutions" / "04-block")
    result = run_autograder(root)
    assert result.returncode == 0, result.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == results["max_score"] == pytest.approx(config.load(REPO).week("04").max_score)
