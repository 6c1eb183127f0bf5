"""The notebook edition: cells cut at top-level definitions, and a notebook that writes the file and runs the checks."""

from __future__ import annotations

import ast
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
    assert to_json(student_notebook(week, {week.files[0]: skeleton})) == to_json(
        student_notebook(week, {week.files[0]: skeleton})
    )
    nbformat.validate(nbformat.reads(to_json(student_notebook(week, {week.files[0]: skeleton})), as_version=4))


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
    notebook = nbformat.reads(to_json(student_notebook(week, {week.files[0]: source})), as_version=4)
    output = run_notebook(notebook, folder)
    assert (folder / week.files[0]).read_text() == source
    assert expected in output


def written_files(notebook) -> dict[str, str]:
    """What running the notebook's ``%%writefile`` cells leaves on disk (IPython writes the cell after the magic line)."""
    files: dict[str, str] = {}
    for cell in notebook.cells:
        first, _, body = cell.source.partition("\n")
        if cell.cell_type == "code" and first.startswith("%%writefile"):
            *flags, name = first.split()[1:]
            files[name] = (files.get(name, "") if "-a" in flags else "") + body + "\n"
    return files


def test_notebook_of_a_week_with_two_files_writes_both():
    week = config.load(REPO).week("09")
    skeletons = {name: (week.assignment_dir / name).read_text() for name in week.files}
    notebook = nbformat.reads(to_json(student_notebook(week, skeletons)), as_version=4)
    written = written_files(notebook)
    assert list(written) == ["flash.py", "flash_triton.py"]
    for name, text in written.items():
        assert ast.dump(ast.parse(text)) == ast.dump(ast.parse(skeletons[name])), name
    assert "`flash.py` and `flash_triton.py`" in notebook.cells[0].source
