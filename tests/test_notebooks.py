"""The notebook edition: cells cut at top-level definitions, and a notebook that writes the file and runs the checks."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from autograder import config
from autograder.export.notebooks import split_top_level, student_notebook, to_json
from autograder.release import GENERATED_NOTE, make_skeleton
from tests.helpers import REPO


def test_cells_are_the_file_cut_at_each_top_level_definition():
    source = '"""Doc."""\n\nimport math\n\n\n# helper\n@staticmethod\ndef f():\n    return 1\n\n\nclass A:\n    x = 1\n'
    chunks = split_top_level(source)
    assert chunks == [
        '"""Doc."""\n\nimport math\n',
        "# helper\n@staticmethod\ndef f():\n    return 1\n",
        "class A:\n    x = 1\n",
    ]


@pytest.mark.parametrize("week_id", [week.id for week in config.load(REPO).weeks])
def test_every_solution_splits_without_losing_a_line(week_id):
    week = config.load(REPO).week(week_id)
    source = (week.solution_dir / week.files[0]).read_text()
    chunks = split_top_level(source)
    assert len(chunks) > 1
    assert [line for chunk in chunks for line in chunk.splitlines() if line.strip()] == [
        line for line in source.splitlines() if line.strip()
    ]


def test_notebook_json_is_deterministic():
    week = config.load(REPO).week("01")
    skeleton = (week.assignment_dir / week.files[0]).read_text()
    assert to_json(student_notebook(week, skeleton)) == to_json(student_notebook(week, skeleton))
    nbformat.validate(nbformat.reads(to_json(student_notebook(week, skeleton)), as_version=4))


def run_notebook(notebook, folder):
    nbclient = pytest.importorskip("nbclient", reason="the export extra (nbclient, ipykernel) is not installed")
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return notebook.cells[-1].outputs[0]["text"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "expected"), [("skeleton", "0/5 public checks pass"), ("solution", "5/5 public checks pass")]
)
def test_running_the_notebook_writes_the_file_and_runs_the_checks(tmp_path, which, expected):
    week = config.load(REPO).week("01")
    folder = tmp_path / week.id
    shutil.copytree(week.assignment_dir, folder)
    (folder / week.files[0]).unlink()  # the notebook writes it
    solution = (week.solution_dir / week.files[0]).read_text()
    source = GENERATED_NOTE + make_skeleton(solution) if which == "skeleton" else solution
    notebook = nbformat.reads(to_json(student_notebook(week, source)), as_version=4)
    output = run_notebook(notebook, folder)
    assert (folder / week.files[0]).read_text() == source
    assert expected in output
