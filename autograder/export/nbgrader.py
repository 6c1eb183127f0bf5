"""``course export nbgrader``: an nbgrader course directory built from the solutions and hidden tests.

For each week, ``source/<week>/<file>.ipynb`` holds the reference solution (every
file of the week, one after the other) cut into cells at its definitions, with nbgrader's ``### BEGIN/END SOLUTION``
markers where the course has its own, followed by one locked, graded cell per
hidden test case, worth that case's points in course.yml. The graded cells
wrap their code in ``### BEGIN/END HIDDEN TESTS``: ``nbgrader
generate_assignment`` strips it from the students' copy and ``nbgrader
autograde`` puts it back. The code calls :func:`autograder.export.inprocess.assert_case`,
which runs the course's real hidden tests in the notebook's kernel, so
``autograde`` gives the same score as ``course grade`` for the same code.

Autograding needs this course installed where nbgrader runs (``pip install -e
'.[export]'`` in the course repository, or ``COURSE_ROOT`` pointing at it):
the hidden tests and the reference solutions never go into the notebooks. The
earlier weeks' modules a week imports (``uses:`` in course.yml) are copied beside
its source notebook as reference files, so they are released with it and put back
by ``autograde``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from nbformat.v4 import new_markdown_cell

from autograder import reference
from autograder.config import Course, Week
from autograder.export.inprocess import grade_in_process
from autograder.export.notebooks import nbgrader_notebook, to_json

CONFIG = """# nbgrader configuration written by `course export nbgrader`.
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "transformers-course"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
c.ExecutePreprocessor.timeout = 600  # seconds per cell; the first graded cell runs the whole hidden suite
"""


def hidden_cases(week: Week) -> list[tuple[str, float]]:
    """Every hidden test case of ``week`` with its points, found by grading the reference in-process."""
    references = reference.load_week(week)
    report = grade_in_process(week, references, submission=week.solution_dir)
    failed = [test.name for test in report.failed]
    if failed:
        raise ValueError(f"the reference solution of week {week.id} fails {', '.join(failed)}; run `course validate`")
    return [(test.name, test.max_score) for test in report.tests]


def manual_cells(week: Week, first: int = 0) -> list[Any]:
    """One manually graded task cell per item course.yml grades by hand (``manual:``), worth its points.

    ``nbgrader autograde`` leaves them to the instructor (formgrader's manual grading); the
    autograded cells above never count them, as ``course grade`` does not.
    """
    cells = []
    for number, (name, points) in enumerate(week.manual.items(), start=first):
        cell = new_markdown_cell(  # type: ignore[no-untyped-call]
            f"**Graded by hand ({points:g} points): {name}.** The course staff grade this; the autograder does not. "
            "For a lab's report: hand in `report.md` beside this notebook."
        )
        cell.metadata["nbgrader"] = {  # nbgrader's "manually graded task": always left to a person
            "grade": False,
            "grade_id": f"manual-{name}",
            "locked": True,
            "points": points,
            "schema_version": 3,
            "solution": False,
            "task": True,
        }
        cell["id"] = f"cell-{number:03d}"  # fixed, as the notebook's other cells
        cells.append(cell)
    return cells


def notebook_path(root: Path, week: Week, folder: str = "source") -> Path:
    return root / folder / week.id / (week.files[0].removesuffix(".py") + ".ipynb")


def export(course: Course, weeks: list[Week], out: Path) -> list[Path]:
    """Write ``nbgrader_config.py`` and one source notebook per week into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG)
    written = []
    for week in weeks:
        sources = {name: (week.solution_dir / name).read_text() for name in week.files}
        path = notebook_path(out, week)
        path.parent.mkdir(parents=True, exist_ok=True)
        notebook = nbgrader_notebook(week, sources, hidden_cases(week))
        notebook.cells.extend(manual_cells(week, first=len(notebook.cells)))
        path.write_text(to_json(notebook))
        written.append(path)
        for name, earlier in week.carried_files.items():
            # Beside the notebook: released with it (so `from block import ...` runs) and put back by
            # `nbgrader autograde`, which overwrites a student's copy with the source's: carry: reference.
            shutil.copyfile(earlier.solution_dir / name, path.parent / name)
            written.append(path.parent / name)
    return written


def submit(exported: Path, week: Week, student: str, code: str | dict[str, str]) -> Path:
    """File ``code`` as ``student``'s submission of ``week`` in the exported course ``exported``.

    Takes the released notebook (run ``nbgrader generate_assignment`` first) and, for each of
    the week's files, puts the whole student file into that file's first answer cell and
    empties its others, as a student who pastes their modules would. ``code`` is the first
    file's text or ``{file name: text}``. Returns the path under ``submitted/<student>/``.
    """
    files = {week.files[0]: code} if isinstance(code, str) else code
    notebook = json.loads(notebook_path(exported, week, "release").read_text())
    sections: dict[str, list[dict[str, Any]]] = {}
    current = week.files[0]
    for cell in notebook["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade_id", "").startswith("file-"):
            current = meta["grade_id"].removeprefix("file-") + ".py"
        elif meta.get("solution"):
            sections.setdefault(current, []).append(cell)
    for name, text in files.items():
        answers = sections[name]
        answers[0]["source"] = text
        for cell in answers[1:]:
            cell["source"] = ""
    path = notebook_path(exported / "submitted" / student, week, "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook))
    return path
