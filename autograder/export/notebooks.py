# mypy: disable-error-code="no-untyped-call"
"""Notebooks generated from the solutions: the students' notebook edition and nbgrader's source notebooks.

Both split a Python file into cells at its top-level definitions (a function or
class per cell, with its decorators and the comments right above it; the
module docstring and imports first), so a notebook reads like the file.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.config import Week
from autograder.markers import BEGIN, END

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def split_top_level(source: str) -> list[str]:
    """The source cut before each top-level ``def``/``class`` (keeping its decorators and comments above it)."""
    lines = source.splitlines(keepends=True)
    starts = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            while start > 0 and lines[start - 1].lstrip().startswith("#"):
                start -= 1
            starts.append(start)
    bounds = [0, *starts, len(lines)]
    chunks = ["".join(lines[a:b]).strip("\n") for a, b in zip(bounds, bounds[1:], strict=False)]
    return [chunk + "\n" for chunk in chunks if chunk.strip()]


def _notebook(cells: list[Any]) -> Any:
    notebook = new_notebook(cells=cells, metadata={"kernelspec": KERNEL, "language_info": {"name": "python"}})
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{number:03d}"  # fixed ids: the same source gives the same notebook
    return notebook


def to_json(notebook: Any) -> str:
    text: str = nbformat.writes(notebook, version=4)
    return text + "\n"


# -- the students' notebook edition ---------------------------------------------------------

STUDENT_INTRO = """# Week {number}: {title}

The handout is `weeks/{week}/README.md`. This notebook is the same assignment as
{files}: each code cell below holds one part of a file, and **running a cell
writes it** (a file's first cell creates it, the others append to it), so
run every cell in order after each change. Then run the last cell: it runs the
public checks (`course check {number}`) on the files the cells wrote.

Running the notebook **replaces** {files} in this folder: work either in the
notebook or in the files, not both.
"""

USES_INTRO = """
This week imports earlier weeks' modules: {modules}. The checks run with your
own files there (or the provided ones with `course check --provided`); {grade}
"""

GRADED_WITH = {
    "reference": "your grade uses the reference modules, so an earlier week's mistake costs nothing here.",
    "student": "your grade uses your own earlier files handed in with this week's, and says which week a failure comes from.",
}

CHECK_CELL = """# Run the public checks on {file}, written by the cells above.
import os
import subprocess
import sys

result = subprocess.run(
    [sys.executable, "-m", "autograder.cli", "check", "{week}", "."],
    capture_output=True,
    text=True,
    env={{**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "110"}},
)
print(result.stdout + result.stderr)
"""


def _listing(names: list[str]) -> str:
    quoted = [f"`{name}`" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _file_heading(name: str) -> Any:
    return new_markdown_cell(f"## `{name}`")


def student_notebook(week: Week, sources: dict[str, str]) -> Any:
    """The week's notebook: each file's source (the skeleton) as ``%%writefile`` cells, then a cell running the checks.

    ``sources`` maps each of the week's files to its text, in the order of ``week.files``.
    """
    names = list(sources)
    intro = STUDENT_INTRO.format(number=f"{week.number:02d}", title=week.title, week=week.id, files=_listing(names))
    if week.carried:
        modules = ", ".join(f"`{name}` (in `../{earlier.id}/`)" for name, earlier in week.carried_files.items())
        intro += USES_INTRO.format(modules=modules, grade=GRADED_WITH[week.carry])
    cells = [new_markdown_cell(intro)]
    for name, source in sources.items():
        if len(names) > 1:
            cells.append(_file_heading(name))
        for index, chunk in enumerate(split_top_level(source)):
            magic = f"%%writefile {name}" if index == 0 else f"%%writefile -a {name}\n\n"
            cells.append(new_code_cell(f"{magic}\n{chunk}"))
    cells.append(new_code_cell(CHECK_CELL.format(file=_listing(names), week=week.id)))
    return _notebook(cells)


# -- nbgrader --------------------------------------------------------------------------------


def _nbgrader(grade_id: str, *, solution: bool = False, grade: bool = False, points: float = 0.0) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def to_nbgrader_markers(chunk: str) -> tuple[str, bool]:
    """The course's solution markers as nbgrader's (the TODO text kept as a comment); and whether there were any."""
    out, found = [], False
    for line in chunk.splitlines():
        begin = BEGIN.match(line)
        if begin:
            found = True
            indent, todo = begin.group("indent"), (begin.group("todo") or "").strip()
            if todo:
                out.append(f"{indent}# TODO: {todo}")
            out.append(f"{indent}### BEGIN SOLUTION")
        elif END.match(line):
            out.append(re.sub(r"# END SOLUTION", "### END SOLUTION", line))
        else:
            out.append(line)
    return "\n".join(out) + "\n", found


NBGRADER_TEST = """### BEGIN HIDDEN TESTS
from autograder.export.inprocess import assert_case

assert_case({week!r}, {case!r}, globals())
### END HIDDEN TESTS
"""


def nbgrader_notebook(week: Week, sources: dict[str, str], cases: list[tuple[str, float]]) -> Any:
    """nbgrader's source notebook: solution cells from each file's source, then one locked, graded cell per hidden test case.

    A week of several files becomes one notebook, one file after the other, so the graded
    cells see every file's names in the notebook's one namespace.
    """
    intro = f"# Week {week.number:02d}: {week.title}\n\nThe handout is `weeks/{week.id}/README.md`. Fill in every `YOUR CODE HERE`; the graded cells at the end run the course's hidden tests."
    cells = [new_markdown_cell(intro, metadata=_nbgrader("intro"))]
    index = 0
    for name, source in sources.items():
        if len(sources) > 1:
            cells.append(new_markdown_cell(f"## `{name}`", metadata=_nbgrader(f"file-{name.removesuffix('.py')}")))
        for chunk in split_top_level(source):
            text, is_solution = to_nbgrader_markers(chunk)
            cells.append(new_code_cell(text, metadata=_nbgrader(f"code-{index:02d}", solution=is_solution)))
            index += 1
    cells.append(new_markdown_cell("## Graded tests (hidden until grading)", metadata=_nbgrader("tests-heading")))
    for number, (case, points) in enumerate(cases):
        cell = new_code_cell(NBGRADER_TEST.format(week=week.id, case=case))
        cell.metadata.update(_nbgrader(f"test-{number:03d}", grade=True, points=round(points, 6)))
        cells.append(cell)
    return _notebook(cells)
