"""GitHub Classroom: the student edition's autograding workflow and the instructors' grading workflow.

The workflows' YAML is parsed and the commands they run are run here: `course check NN` in a student
edition (public tests only), and the instructor workflow's collect and grade steps on cloned repositories.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder import config
from autograder.export import classroom, gradescope
from tests.helpers import REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CLASS = REPO / "examples" / "class-01"


def steps(workflow: dict) -> list[dict]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


WEEK = "01-attention"


def one_week_course(dest: Path) -> Path:
    """A copy of the course with week 01 only (as the Gradescope zip holds it, plus its handout, public tests and
    assignment folder): the student edition is built from it, whatever other weeks are being edited here."""
    course = config.load(REPO)
    week = course.week(WEEK)
    for name, content in gradescope.week_source_files(course, week).items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(content, path) if isinstance(content, Path) else path.write_text(content)
    for folder in (week.public_dir, week.assignment_dir, REPO / "weeks" / WEEK):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(folder, dest / folder.relative_to(REPO), ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    source = one_week_course(tmp_path_factory.mktemp("course"))
    dest = tmp_path_factory.mktemp("edition") / "course-student"
    env = {**os.environ, "COURSE_ROOT": str(source), "PYTHONPATH": str(source)}
    result = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "release", "--student", str(dest), "--classroom"],
        capture_output=True,
        text=True,
        cwd=source,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return dest


def test_the_student_workflow_checks_every_week_with_the_public_tests(edition):
    text = (edition / ".github" / "workflows" / "classroom.yml").read_text()
    workflow = yaml.safe_load(text)
    assert "push" in workflow["on"]
    graders = [s for s in steps(workflow) if s.get("uses") == "education/autograding-command-grader@v1"]
    weeks = config.load(edition).weeks
    assert [w.id for w in weeks] == [WEEK]
    assert [s["id"] for s in graders] == [f"week-{w.number:02d}" for w in weeks]
    assert all(
        s["with"]["command"].startswith(f"course check {w.number:02d} ") for s, w in zip(graders, weeks, strict=True)
    )
    reporter = steps(workflow)[-1]
    assert reporter["uses"] == "education/autograding-grader-reporter@v1"
    assert reporter["with"]["runners"].split(",") == [s["id"] for s in graders]
    assert "autograder/hidden" not in text
    assert not (edition / "autograder" / "hidden").exists()
    assert "Classroom" in (edition / "README.md").read_text()


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_the_workflows_check_command_fails_a_skeleton_and_passes_a_solution(edition):
    workflow = yaml.safe_load((edition / ".github" / "workflows" / "classroom.yml").read_text())
    command = next(s["with"]["command"] for s in steps(workflow) if s.get("id") == "week-01")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(edition)}
    env.pop("COURSE_ROOT", None)
    skeleton = run_step(command, edition, env)
    assert skeleton.returncode != 0, skeleton.stdout
    assert "public checks pass" in skeleton.stdout

    shutil.copyfile(
        REPO / "solutions" / "01-attention" / "attention.py", edition / "assignments" / "01-attention" / "attention.py"
    )
    solved = run_step(command, edition, env)
    assert solved.returncode == 0, solved.stdout + solved.stderr


def test_the_instructor_workflow_grades_cloned_repositories_with_the_hidden_tests(tmp_path):
    classroom.export(config.load(REPO), tmp_path / "export")
    workflow = yaml.safe_load((tmp_path / "export" / ".github" / "workflows" / "grade-class.yml").read_text())
    by_name = {s.get("name"): s for s in steps(workflow)}
    assert workflow["on"]["workflow_dispatch"]["inputs"].keys() == {"week", "assignment"}
    assert "secrets.CLASSROOM_TOKEN" in by_name["Fetch the students' repositories"]["env"]["GH_TOKEN"]

    run = tmp_path / "runner"  # the instructors' repository as the runner checks it out, after `gh repo clone`
    run.mkdir()
    (run / ".venv").symlink_to(BIN.parent)
    for student, source in (("ann", CLASS / "alice"), ("ben", CLASS / "bob")):
        folder = run / "checkouts" / student / "assignments" / "01-attention"
        folder.mkdir(parents=True)
        shutil.copyfile(source / "attention.py", folder / "attention.py")
    (run / "checkouts" / "ben" / "assignments" / "01-attention" / "notes.py").symlink_to(REPO / "course.yml")
    (run / "checkouts" / "cal").mkdir()  # accepted the assignment, pushed nothing
    env = {**os.environ, "COURSE_ROOT": str(REPO), "WEEK": "01", "ASSIGNMENT": "week-01"}

    for name in ("Collect each student's files for the week", "Grade with the hidden tests"):
        result = run_step(by_name[name]["run"], run, env)
        assert result.returncode == 0, result.stderr
    assert not (run / "class" / "ben" / "notes.py").exists()  # symlinks are not collected
    rows = {r["student"]: r for r in csv.DictReader((run / "build" / "week-01" / "gradebook.csv").open())}
    week = config.load(REPO).week("01")
    assert float(rows["ann"]["score"]) == week.max_score
    assert 0 < float(rows["ben"]["score"]) < week.max_score
    assert float(rows["cal"]["score"]) == 0
