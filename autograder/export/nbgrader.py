"""``course export nbgrader``: an nbgrader course directory built from the solutions and hidden tests.

For each week, ``source/<week>/<file>.ipynb`` holds the reference solution cut
into cells at its definitions, with nbgrader's ``### BEGIN/END SOLUTION``
markers where the course has its own, followed by one locked, graded cell per
hidden test case, worth that case's points in course.yml. The graded cells
wrap their code in ``### BEGIN/END HIDDEN TESTS``: ``nbgrader
generate_assignment`` strips it from the students' copy and ``nbgrader
autograde`` puts it back. The code calls :func:`autograder.export.inprocess.assert_case`,
which runs the course's real hidden tests in the notebook's kernel, so
``autograde`` gives the same score as ``course grade`` for the same code.

Autograding needs this course installed where nbgrader runs (``pip install -e
'.[export]'`` in the course repository, or ``COURSE_ROOT`` pointing at it):
the hidden tests and the reference solutions never go into the notebooks.
"""

from __future__ import annotations

import json
from pathlib import Path

from autograder.config import Course, Week
from autograder.export.inprocess import grade_in_process
from autograder.export.notebooks import nbgrader_notebook, to_json
from autograder.plugin import load_reference

CONFIG = """# nbgrader configuration written by `course export nbgrader`.
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "transformers-course"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
c.ExecutePreprocessor.timeout = 600  # seconds per cell; the first graded cell runs the whole hidden suite
"""


def hidden_cases(week: Week) -> list[tuple[str, float]]:
    """Every hidden test case of ``week`` with its points, found by grading the reference in-process."""
    reference = load_reference(week)
    report = grade_in_process(week, {week.modules[0]: reference})
    failed = [test.name for test in report.tests if test.status != "passed"]
    if failed:
        raise ValueError(f"the reference solution of week {week.id} fails {', '.join(failed)}; run `course validate`")
    return [(test.name, test.max_score) for test in report.tests]


def notebook_path(root: Path, week: Week, folder: str = "source") -> Path:
    return root / folder / week.id / (week.files[0].removesuffix(".py") + ".ipynb")


def export(course: Course, weeks: list[Week], out: Path) -> list[Path]:
    """Write ``nbgrader_config.py`` and one source notebook per week into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG)
    written = []
    for week in weeks:
        source = (week.solution_dir / week.files[0]).read_text()
        path = notebook_path(out, week)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_json(nbgrader_notebook(week, source, hidden_cases(week))))
        written.append(path)
    return written


def submit(exported: Path, week: Week, student: str, code: str) -> Path:
    """File ``code`` as ``student``'s submission of ``week`` in the exported course ``exported``.

    Takes the released notebook (run ``nbgrader generate_assignment`` first), puts the whole
    student file into the first answer cell and empties the others, as a student who pastes
    their module would; returns the path under ``submitted/<student>/``.
    """
    notebook = json.loads(notebook_path(exported, week, "release").read_text())
    answers = [cell for cell in notebook["cells"] if cell["metadata"].get("nbgrader", {}).get("solution")]
    answers[0]["source"] = code
    for cell in answers[1:]:
        cell["source"] = ""
    path = notebook_path(exported / "submitted" / student, week, "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook))
    return path
