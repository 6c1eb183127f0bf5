"""``course export gradescope WEEK``: a Gradescope autograder zip.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once
when the image is built, copies ``run_autograder`` to ``/autograder/`` and runs
it for every submission (the student's files in ``/autograder/submission``);
the score is what it writes to ``/autograder/results/results.json``. Ours runs
``course grade``, so Gradescope shows exactly what ``course grade`` computes,
with the same sandbox, limits and feedback.

The zip holds the engine, the week's hidden tests and reference solution, the
reference modules of the earlier weeks it imports (``uses:``) and a course.yml with
only those weeks: no other week's tests or mutants, and no solution the week does
not import. Items course.yml grades by hand (``manual:``, week 10's report) are outside
the autograder's score; ``GRADED_BY_HAND.md`` in the zip lists them for manual questions.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import yaml

from autograder.config import CONFIG_NAME, Course, Week

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q python3 python3-pip python3-venv bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet --upgrade pip
/autograder/venv/bin/pip install --quiet -e /autograder/source
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. AUTOGRADER_ROOT and COURSE_PYTHON exist for local tests.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{COURSE_PYTHON:-$ROOT/venv/bin/python}}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
COURSE_ROOT="$ROOT/source" "$PYTHON" -m autograder.cli grade {week} "$ROOT/submission" --out "$RESULTS"
status=$?
if [ ! -s "$RESULTS" ]; then
  # The grader could not run (exit 2): give the student a message instead of a blank Gradescope error.
  printf '{{"score": 0, "output": "The autograder could not run (exit %s); please tell the course staff.", "tests": []}}\\n' \\
    "$status" > "$RESULTS"
fi
"""

ENGINE_SKIP = {"hidden", "public", "mutants", "export_cache", "__pycache__"}


def _engine_files(root: Path) -> list[Path]:
    """The ``autograder`` package's own files (code and pytest ini), without any week's tests."""
    package = root / "autograder"
    files = []
    for path in sorted(package.rglob("*")):
        parts = path.relative_to(package).parts
        if (
            path.is_file()
            and parts[0] not in ENGINE_SKIP
            and "__pycache__" not in parts
            and path.suffix in (".py", ".ini")
        ):
            files.append(path)
    return files


def one_week_config(course: Course, week: Week) -> str:
    """course.yml with only ``week`` in it, and the earlier weeks it imports without their tests (titles, defaults and limits unchanged)."""
    data = yaml.safe_load((course.root / CONFIG_NAME).read_text())
    carried = {earlier.id for earlier in week.carried}
    data["weeks"] = [w for w in data["weeks"] if w["id"] == week.id or w["id"] in carried]
    for entry in data["weeks"]:
        if entry["id"] != week.id:
            entry["tests"] = {}  # only their modules travel, not their hidden test names
            entry.pop("manual", None)
    text: str = yaml.safe_dump(data, sort_keys=False)
    return f"# Exported by `course export` for week {week.id} only.\n" + text


def week_source_files(course: Course, week: Week) -> dict[str, Path | str]:
    """Archive name -> file (or text) of what the grader of one week needs."""
    root = course.root
    files: dict[str, Path | str] = {CONFIG_NAME: one_week_config(course, week)}
    for name in ("pyproject.toml", "README.md"):
        files[name] = root / name
    for path in _engine_files(root):
        files[str(path.relative_to(root))] = path
    for folder in (week.hidden_dir, week.solution_dir):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[str(path.relative_to(root))] = path
    for name, earlier in week.carried_files.items():  # the modules the week imports, delivered at grading time
        files[str((earlier.solution_dir / name).relative_to(root))] = earlier.solution_dir / name
    return files


GRADED_BY_HAND = """# Week {week}: graded by hand, outside this autograder

The autograder's score (results.json's `max_score`, {auto:g} points) leaves these out; each
student's results say "graded by hand" for them. Add each as a manually graded question of the
assignment in Gradescope, with these points, for the week's total of {total:g}:

{items}
"""


def graded_by_hand(week: Week) -> str | None:
    """A note for the zip on the items course.yml grades by hand (``manual:``), or None where there are none."""
    if not week.manual:
        return None
    items = "\n".join(f"* `{name}`: {points:g} points" for name, points in week.manual.items())
    return GRADED_BY_HAND.format(
        week=week.id, auto=week.max_score, total=week.max_score + week.manual_points, items=items
    )


def _add(archive: zipfile.ZipFile, name: str, content: Path | str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # fixed: the same course gives the same zip
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    data = content.read_bytes() if isinstance(content, Path) else content.encode()
    archive.writestr(info, data)


def export(course: Course, week: Week, out: Path) -> Path:
    """Write the autograder zip for ``week`` to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH, executable=True)
        _add(archive, "run_autograder", RUN_AUTOGRADER.format(week=week.id), executable=True)
        for name, content in sorted(week_source_files(course, week).items()):
            _add(archive, name, content)
        note = graded_by_hand(week)
        if note is not None:
            _add(archive, "GRADED_BY_HAND.md", note)
    return out
