"""``course export prairielearn WEEK --out DIR``: a PrairieLearn question graded by the course's own grader.

PrairieLearn's external grading starts a Docker image for every submission with
``/grade`` laid out as::

    /grade/serverFilesCourse/transformers-course/   the files named in info.json's serverFilesCourse
    /grade/student/                                 the student's uploaded files
    /grade/data/data.json                           the question's data (submitted_answers._files, base64)
    /grade/results/results.json                     what the entrypoint must write

``DIR`` receives what goes into a PrairieLearn course repository:

* ``questions/<week>/info.json`` (``externalGradingOptions``: image, entrypoint, serverFilesCourse,
  timeout) and ``question.html`` (a file upload of the week's files and the grader's results);
* ``serverFilesCourse/transformers-course/``: the week's grader, the same files as the Gradescope
  zip (engine, hidden tests, reference, a course.yml with that week only) and ``grade.sh``, the
  entrypoint, which runs :func:`main`;
* ``grader-image/``: a Dockerfile for the image (Python, bubblewrap and the course's dependencies,
  no course file: the image may be public, the hidden tests travel only in serverFilesCourse).

:func:`main` grades ``/grade/student`` (files missing there are taken from ``data.json``'s
``_files``) with ``grading.grade``, exactly as ``course grade``, and writes PrairieLearn's
results: ``score`` in [0, 1], ``tests`` with ``name``, ``points``, ``max_points``, ``output`` and
``message``. If the grader itself cannot run, the result is ``gradable: false`` (no attempt used)
with the reason in ``format_errors``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import stat
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from autograder.config import Course, Week
from autograder.export.gradescope import week_source_files
from autograder.results import GradeReport

FOLDER = "transformers-course"  # under the PrairieLearn course's serverFilesCourse/
ROOT_ENV = "PL_GRADE_ROOT"  # the /grade root, for running the entrypoint outside PrairieLearn's container
DEFAULT_IMAGE = "transformers-course/grader:latest"
STARTUP_S = 60  # starting Python, importing torch twice, the zygote: on top of the week's grading limit

GRADE_SH = """#!/usr/bin/env bash
# PrairieLearn runs this for every submission. PL_GRADE_ROOT and COURSE_PYTHON exist for local tests.
set -uo pipefail
ROOT="${{PL_GRADE_ROOT:-/grade}}"
PYTHON="${{COURSE_PYTHON:-python3}}"
SRC="$ROOT/serverFilesCourse/{folder}"
mkdir -p "$ROOT/results"
cd "$SRC"
COURSE_ROOT="$SRC" PYTHONPATH="$SRC" "$PYTHON" -m autograder.export.prairielearn {week} --root "$ROOT"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
  printf '{{"gradable": false, "format_errors": ["The autograder could not run (exit %s); please tell the course staff."]}}\\n' \\
    "$status" > "$ROOT/results/results.json"
fi
"""

DOCKERFILE = """# The external-grading image: Python, bubblewrap and the course's dependencies; no course file
# (the grader and the hidden tests come with each job, in /grade/serverFilesCourse).
#   docker build -t {image} grader-image && docker push {image}
FROM python:3.11-slim
RUN apt-get update -q && apt-get install -y -q --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /tmp/course/
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu /tmp/course \\
 && pip uninstall -y transformers-course && rm -rf /tmp/course
"""

QUESTION_HTML = """<pl-question-panel>
  <p>Week {week}: {title}. Upload {files}; the hidden tests grade {points:g} points.</p>
  <p>Check your work first with <code>course check {number:02d}</code>.</p>
</pl-question-panel>

<pl-file-upload file-names="{names}"></pl-file-upload>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""


def info_json(week: Week, image: str) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"transformers-course/{week.id}")),  # the same on every export
        "title": f"Week {week.id}: {week.title}",
        "topic": week.title,
        "tags": ["transformers-course", week.id],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": image,
            "serverFilesCourse": [f"{FOLDER}/"],
            "entrypoint": f"/grade/serverFilesCourse/{FOLDER}/grade.sh",
            "timeout": int(min(600, week.limits.total_timeout_s + STARTUP_S)),  # PrairieLearn's ceiling is 600 s
        },
    }


def export(course: Course, week: Week, out: Path, *, image: str = DEFAULT_IMAGE) -> list[Path]:
    """Write the question, the grader files and the image's Dockerfile for ``week`` under ``out``."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    written: list[Path] = []

    def write(path: Path, content: Path | str, executable: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_text(content)
        if executable:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)

    question = out / "questions" / week.id
    write(question / "info.json", json.dumps(info_json(week, image), indent=2) + "\n")
    write(
        question / "question.html",
        QUESTION_HTML.format(
            week=week.id,
            title=week.title,
            files=", ".join(f"<code>{name}</code>" for name in week.files),
            points=week.max_score,
            number=week.number,
            names=" ".join(week.files),
        ),
    )
    source = out / "serverFilesCourse" / FOLDER
    for name, content in sorted(week_source_files(course, week).items()):
        write(source / name, content)
    write(source / "grade.sh", GRADE_SH.format(folder=FOLDER, week=week.id), executable=True)
    write(out / "grader-image" / "Dockerfile", DOCKERFILE.format(image=image))
    write(out / "grader-image" / "pyproject.toml", course.root / "pyproject.toml")
    write(out / "grader-image" / "README.md", "The course's dependencies, for the grader image.\n")
    return written


def student_folder(root: Path, week: Week, scratch: Path) -> Path:
    """``/grade/student``, with any of the week's files missing there taken from ``data.json``'s ``_files``."""
    student = root / "student"
    data_path = root / "data" / "data.json"
    files: dict[str, bytes] = {}
    if data_path.is_file():
        try:
            data = json.loads(data_path.read_text())
            for item in (data.get("submitted_answers") or {}).get("_files") or []:
                name = str(item.get("name", ""))
                if name in week.files:
                    files[name] = base64.b64decode(item.get("contents", ""))
        except (ValueError, AttributeError, TypeError):
            pass  # a malformed data.json: grade what /grade/student holds
    missing = {name: content for name, content in files.items() if not (student / name).exists()}
    if not missing:
        return student
    folder = scratch / "student"
    if student.is_dir():
        shutil.copytree(student, folder, symlinks=True)
    folder.mkdir(exist_ok=True)
    for name, content in missing.items():
        (folder / name).write_bytes(content)
    return folder


def to_prairielearn(report: GradeReport) -> dict[str, Any]:
    """A graded report as PrairieLearn's results.json."""
    score, max_score = round(report.score, 4), round(report.max_score, 4)
    tests = [
        {
            "name": test.name,
            "points": round(test.score, 4),
            "max_points": round(test.max_score, 4),
            "output": test.output,
            "message": "passed" if test.passed else (test.output.splitlines() or ["failed"])[0],
        }
        for test in report.tests
    ]
    return {
        "gradable": True,
        "score": round(score / max_score, 6) if max_score else 0.0,
        "message": f"{score:g} / {max_score:g} points",
        "output": report.output_text(),
        "tests": tests,
    }


def main(argv: list[str] | None = None) -> int:
    """The grader entrypoint: grade ``ROOT/student`` and write ``ROOT/results/results.json``."""
    parser = argparse.ArgumentParser(prog="python -m autograder.export.prairielearn")
    parser.add_argument("week")
    parser.add_argument("--root", default=os.environ.get(ROOT_ENV, "/grade"), help="the /grade folder")
    args = parser.parse_args(argv)
    root = Path(args.root)
    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from autograder import config, grading

    try:
        week = config.load().week(args.week)
        with tempfile.TemporaryDirectory(prefix="course-pl-") as scratch:
            submission = student_folder(root, week, Path(scratch))
            report = grading.grade(week, submission, extra_hidden=[root.resolve()])
            results = to_prairielearn(report)
    except Exception as exc:  # the grader could not run: not the student's fault, no attempt used
        results = {
            "gradable": False,
            "format_errors": [
                f"The autograder could not run ({type(exc).__name__}: {exc}); please tell the course staff."
            ],
        }
    tmp = results_path.with_name(".results.json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, results_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
