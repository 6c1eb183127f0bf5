"""`course export prairielearn`: the question and grader, laid out as PrairieLearn's /grade, grade like `course grade`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import config
from autograder.export import prairielearn
from tests.helpers import REPO

WEEK = "01-attention"
CLASS = REPO / "examples" / "class-01"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    course = config.load(REPO)
    out = tmp_path_factory.mktemp("pl") / "course"
    prairielearn.export(course, course.week(WEEK), out)
    return out


def grade_layout(exported: Path, base: Path, student: Path | None, data: dict | None = None) -> Path:
    """/grade as PrairieLearn's grader prepares it: serverFilesCourse/<what info.json names>, student/, data/."""
    info = json.loads((exported / "questions" / WEEK / "info.json").read_text())
    root = base / "grade"
    for name in info["externalGradingOptions"]["serverFilesCourse"]:
        shutil.copytree(exported / "serverFilesCourse" / name, root / "serverFilesCourse" / name)
    (root / "student").mkdir(parents=True)
    if student is not None:
        for path in student.iterdir():
            shutil.copyfile(path, root / "student" / path.name)
    if data is not None:
        (root / "data").mkdir()
        (root / "data" / "data.json").write_text(json.dumps(data))
    return root


def run_entrypoint(exported: Path, root: Path) -> dict:
    info = json.loads((exported / "questions" / WEEK / "info.json").read_text())
    entrypoint = info["externalGradingOptions"]["entrypoint"].replace("/grade", str(root), 1)
    env = {**os.environ, prairielearn.ROOT_ENV: str(root), "COURSE_PYTHON": sys.executable}
    env.pop("COURSE_ROOT", None)
    result = subprocess.run(["bash", entrypoint], capture_output=True, text=True, env=env, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_info_json_enables_external_grading(exported):
    info = json.loads((exported / "questions" / WEEK / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External"
    assert info["type"] == "v3"
    assert options["enabled"] is True
    assert options["image"]
    assert options["serverFilesCourse"] == ["transformers-course/"]
    assert options["entrypoint"] == "/grade/serverFilesCourse/transformers-course/grade.sh"
    assert 0 < options["timeout"] <= 600
    html = (exported / "questions" / WEEK / "question.html").read_text()
    assert 'file-names="attention.py"' in html
    assert "<pl-external-grader-results>" in html
    again = prairielearn.info_json(config.load(REPO).week(WEEK), options["image"])
    assert again == info  # the uuid is stable across exports


def test_the_grader_files_hold_only_what_the_week_needs(exported):
    source = exported / "serverFilesCourse" / "transformers-course"
    names = {str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()}
    assert {"grade.sh", "course.yml", "autograder/cli.py", f"autograder/hidden/{WEEK}/test_attention.py"} <= names
    assert not [n for n in names if "mutants/" in n or "public/" in n or n.startswith("solutions/02")]
    assert os.access(source / "grade.sh", os.X_OK)
    image = {p.name for p in (exported / "grader-image").iterdir()}
    assert image == {"Dockerfile", "pyproject.toml", "README.md"}  # no course file in a possibly public image


def test_results_convert_to_prairielearns_format():
    from autograder.results import GradeReport, TestResult

    converted = prairielearn.to_prairielearn(
        GradeReport(
            "01",
            [TestResult("a", 1.5, 2, True, ""), TestResult("b", 0, 4, False, "wrong sign\nmore")],
            1.0,
            "none",
        )
    )
    assert converted["gradable"] is True
    assert converted["score"] == 0.25
    assert converted["tests"][1] == {
        "name": "b",
        "points": 0,
        "max_points": 4,
        "output": "wrong sign\nmore",
        "message": "wrong sign",
    }


@pytest.mark.slow
def test_the_entrypoint_grades_a_correct_submission_full_and_a_wrong_one_less(exported, tmp_path):
    full = run_entrypoint(exported, grade_layout(exported, tmp_path / "alice", CLASS / "alice"))
    assert full["gradable"] is True
    assert full["score"] == 1.0
    assert all(t["points"] == t["max_points"] for t in full["tests"])
    assert {"name", "points", "max_points", "output", "message"} <= set(full["tests"][0])

    # bob's file comes only through data.json, as PrairieLearn's file elements store it
    encoded = base64.b64encode((CLASS / "bob" / "attention.py").read_bytes()).decode()
    data = {"submitted_answers": {"_files": [{"name": "attention.py", "contents": encoded}]}}
    wrong = run_entrypoint(exported, grade_layout(exported, tmp_path / "bob", None, data))
    assert wrong["gradable"] is True
    assert 0 < wrong["score"] < 1
    assert any("1/sqrt(d)" in t["output"] for t in wrong["tests"])


@pytest.mark.slow
def test_a_grader_that_cannot_run_uses_no_attempt(exported, tmp_path):
    root = grade_layout(exported, tmp_path, CLASS / "alice")
    (root / "serverFilesCourse" / "transformers-course" / "course.yml").write_text("weeks: [")  # broken YAML
    results = run_entrypoint(exported, root)
    assert results["gradable"] is False
    assert "could not run" in results["format_errors"][0]
