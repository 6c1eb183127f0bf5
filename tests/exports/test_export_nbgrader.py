"""`course export nbgrader`: real `nbgrader generate_assignment` and `autograde` give `course grade`'s score."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import config
from autograder.export import nbgrader
from tests.helpers import REPO

pytest.importorskip("nbgrader", reason="the export extra (nbgrader) is not installed")

WEEK = "01-attention"
STUDENT = "bob"  # loses points: no 1/sqrt(d) scale
BIN = Path(sys.executable).parent


def run_nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # nbgrader runs `alembic`
    result = subprocess.run(
        [str(BIN / "nbgrader"), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    course = config.load(REPO)
    out = tmp_path_factory.mktemp("nbgrader")
    nbgrader.export(course, [course.week(WEEK)], out)
    return out


def test_source_notebook_has_solution_cells_and_one_graded_cell_per_case(exported):
    week = config.load(REPO).week(WEEK)
    notebook = json.loads(nbgrader.notebook_path(exported, week).read_text())
    meta = [cell["metadata"].get("nbgrader", {}) for cell in notebook["cells"]]
    graded = [m for m in meta if m.get("grade")]
    assert len(graded) == 37  # week 01's hidden test cases
    assert sum(m["points"] for m in graded) == pytest.approx(sum(week.tests.values()))
    assert all(m["locked"] and not m["solution"] for m in graded)
    solutions = ["".join(c["source"]) for c, m in zip(notebook["cells"], meta, strict=True) if m.get("solution")]
    assert len(solutions) == 4
    assert all("### BEGIN SOLUTION" in text and "### END SOLUTION" in text for text in solutions)
    assert not any("# BEGIN SOLUTION:" in "".join(c["source"]) for c in notebook["cells"])


@pytest.mark.slow
def test_generate_assignment_then_autograde_gives_course_grades_score(exported, tmp_path):
    week = config.load(REPO).week(WEEK)
    run_nbgrader("generate_assignment", WEEK, "--force", cwd=exported)
    released = nbgrader.notebook_path(exported, week, "release")
    notebook = json.loads(released.read_text())
    text = json.dumps(notebook)
    assert "assert_case" not in text, "hidden tests must be stripped from the students' copy"
    assert "raise NotImplementedError()" in text

    # The student pastes their whole file into the first answer cell and leaves the others empty.
    code = (REPO / "examples" / "class-01" / STUDENT / "attention.py").read_text()
    nbgrader.submit(exported, week, STUDENT, code)
    run_nbgrader("autograde", WEEK, "--force", cwd=exported)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{exported / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(WEEK, STUDENT)
        score, max_score = submission.score, submission.max_score

    out = tmp_path / "results.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder.cli",
            "grade",
            WEEK,
            str(REPO / "examples" / "class-01" / STUDENT),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
        timeout=300,
    )
    expected = json.loads(out.read_text())
    assert 0 < expected["score"] < expected["max_score"]
    assert score == pytest.approx(expected["score"], abs=1e-3)
    assert max_score == pytest.approx(expected["max_score"], abs=1e-3)


@pytest.mark.slow
def test_hidden_cases_of_a_week_with_two_files():
    """Week 09 (flash.py and flash_triton.py) grades in-process with both references loaded.

    All but the GPU compile check and the peak-memory check (2 + 1 of course.yml's 57 points):
    one needs the student's files on disk and the sandbox, the other a worker process whose
    memory the grader can read; in-process they skip, and the export leaves them out.
    """
    week = config.load(REPO).week("09")
    cases = nbgrader.hidden_cases(week)
    assert week.max_score == 57
    assert len(cases) == 117
    assert sum(points for _, points in cases) == pytest.approx(54)
    assert any(case.startswith("test_triton_forward") for case, _ in cases)
    assert not any(case.startswith("test_triton_compiles_for_a_gpu") for case, _ in cases)
    assert not any(case.startswith("test_flash_forward_peak_memory") for case, _ in cases)


@pytest.mark.slow
def test_in_process_lab_files_come_from_the_working_directory(tmp_path, monkeypatch):
    """Under nbgrader and otter a lab's report, plot, log and checkpoint sit beside the notebook."""
    from autograder.export.inprocess import case_results
    from autograder.plugin import load_reference

    week = config.load(REPO).week("10")
    for path in week.solution_dir.iterdir():
        if path.suffix != ".py":
            (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    results = case_results(week.id, vars(load_reference(week)), str(REPO))
    failed = [case for case, (passed, _) in results.items() if not passed]
    assert not failed
    assert len(results) == 65  # week 10's hidden test cases (README weeks table)
    assert any(case.startswith("test_lab_") for case in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "the code's own files go to a scratch folder"


@pytest.mark.slow
def test_a_later_week_is_released_and_autograded_with_the_modules_it_imports(tmp_path):
    course = config.load(REPO)
    week = course.week("04")
    nbgrader.export(course, [week], tmp_path)
    assert (tmp_path / "source" / week.id / "multihead.py").is_file()
    run_nbgrader("generate_assignment", week.id, "--force", cwd=tmp_path)
    assert (tmp_path / "release" / week.id / "multihead.py").is_file()  # students get it with the notebook
    nbgrader.submit(tmp_path, week, "ada", (week.solution_dir / "block.py").read_text())
    run_nbgrader("autograde", week.id, "--force", cwd=tmp_path)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(week.id, "ada")
        assert submission.score == pytest.approx(week.max_score, abs=1e-3)
