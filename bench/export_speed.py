"""The same code graded three ways, side by side: `course`, `nbgrader autograde` and `otter run`.

    python bench/export_speed.py [--week 01] [--student bob] [--repeat 3] [--class-size 10]

Each tool grades the same code (examples/class-01/<student>) with the same
hidden tests (the nbgrader and otter exports run them in-process) and gives the
same score. Two measurements, each printed as seconds and as a ratio to `course`:

* one submission: `course grade` vs `nbgrader autograde` vs `otter run` (median of --repeat);
* a class of --class-size copies: `course grade-all --jobs 2` vs `nbgrader autograde`
  (it grades every submitted notebook) vs `otter run` once per submission (otter's
  batch mode, `otter grade`, needs Docker).

Target: `course` at least 5x faster than each. Setting up each tool (export,
`nbgrader generate_assignment`, `otter generate`) is not timed: instructors do
it once per assignment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder import config  # noqa: E402
from autograder.export import nbgrader, otter  # noqa: E402

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_time(cmd: list[str], cwd: Path, repeat: int) -> float:
    return statistics.median(timed(cmd, cwd) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--week", default="01")
    parser.add_argument("--student", default="bob")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--class-size", type=int, default=10)
    args = parser.parse_args()

    course = config.load(REPO)
    week = course.week(args.week)
    submission = REPO / "examples" / "class-01" / args.student
    with tempfile.TemporaryDirectory(prefix="course-bench-export-") as tmp:
        tmp_path = Path(tmp)
        # Set-up, not timed.
        nb_dir = tmp_path / "nbgrader"
        nbgrader.export(course, [week], nb_dir)
        subprocess.run(
            [str(BIN / "nbgrader"), "generate_assignment", week.id, "--force"],
            check=True,
            cwd=nb_dir,
            env=ENV,
            capture_output=True,
        )
        nbgrader.submit(nb_dir, week, args.student, (submission / week.files[0]).read_text())
        otter_dir = tmp_path / "otter"
        otter_zip = otter.export(course, week, otter_dir)
        otter_run = tmp_path / "otter-run"
        otter_run.mkdir()
        shutil.copy(submission / week.files[0], otter_run / week.files[0])

        results = tmp_path / "results.json"
        seconds = {
            "course grade": median_time(
                [str(BIN / "course"), "grade", week.id, str(submission), "--out", str(results)], REPO, args.repeat
            ),
            "nbgrader autograde": median_time(
                [str(BIN / "nbgrader"), "autograde", week.id, "--force"], nb_dir, args.repeat
            ),
            "otter run": median_time(
                [str(BIN / "otter"), "run", "-a", str(otter_zip), week.files[0], "-o", str(otter_run), "--no-logo"],
                otter_run,
                args.repeat,
            ),
        }
        # A class: N copies of the same submission.
        n = args.class_size
        class_dir = tmp_path / "class"
        code = (submission / week.files[0]).read_text()
        shutil.rmtree(nb_dir / "submitted" / args.student)  # autograde grades every submitted folder: only the class
        for i in range(n):
            shutil.copytree(submission, class_dir / f"s{i:03d}")
            nbgrader.submit(nb_dir, week, f"s{i:03d}", code)
        otter_runs = []
        for i in range(n):
            folder = tmp_path / f"otter-{i:03d}"
            folder.mkdir()
            shutil.copy(submission / week.files[0], folder / week.files[0])
            otter_runs.append(folder)
        gradebook_csv = tmp_path / "class-out" / "gradebook.csv"
        class_seconds = {
            "course": timed(
                [str(BIN / "course"), "grade-all", week.id, str(class_dir), "--out", str(gradebook_csv), "--jobs", "2"],
                REPO,
            ),
            "nbgrader autograde": timed([str(BIN / "nbgrader"), "autograde", week.id, "--force"], nb_dir),
        }
        start = time.perf_counter()
        for folder in otter_runs:
            cmd = [str(BIN / "otter"), "run", "-a", str(otter_zip), week.files[0], "-o", str(folder), "--no-logo"]
            subprocess.run(cmd, check=True, cwd=folder, env=ENV, capture_output=True)
        class_seconds["otter run"] = time.perf_counter() - start

        course_score = json.loads(results.read_text())["score"]
        otter_score = sum(t.get("score") or 0 for t in json.loads((otter_run / "results.json").read_text())["tests"])
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{nb_dir / 'gradebook.db'}") as gradebook:
            nbgrader_score = gradebook.find_submission(week.id, "s000").score  # the same code as the student's

    base = seconds["course grade"]
    print(f"One submission (week {week.id}, {args.student}), median of {args.repeat}:")
    scores = {"course grade": course_score, "nbgrader autograde": nbgrader_score, "otter run": otter_score}
    for tool, value in seconds.items():
        print(f"  {tool:<20} {value:7.2f} s   {value / base:5.2f}x course grade   score {scores[tool]:g}")
    print(
        f"  course grade is {min(seconds['nbgrader autograde'], seconds['otter run']) / base:.1f}x faster than the faster other"
    )
    base = class_seconds["course"]
    print(f"A class of {n} copies:")
    names = {
        "course": "course grade-all -j2",
        "nbgrader autograde": "nbgrader autograde",
        "otter run": f"otter run x {n}",
    }
    for tool, value in class_seconds.items():
        print(f"  {names[tool]:<20} {value:7.2f} s   {value / base:5.2f}x course   {value / n:.2f} s/submission")
    fastest_other = min(class_seconds["nbgrader autograde"], class_seconds["otter run"])
    print(f"  course is {fastest_other / base:.1f}x faster than the faster other (target >= 5x)")


if __name__ == "__main__":
    main()
