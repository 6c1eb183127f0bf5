"""How fast is grading? Ratios to the floor of `python -c "import torch"`, measured in the same run.

    python bench/grade_speed.py [--class-size 50] [--repeat 3]

Prints:
* the floor: seconds to start Python and import torch;
* one week-01 submission graded by `course grade` (a fresh process, as Gradescope runs it),
  as seconds and as a ratio to the floor (target: under 3x);
* a class of N copies graded by `course grade-all` with --jobs 1 and --jobs 2, and the
  speed-up of 2 jobs over 1 (target: at least 1.6x on 2 cores);
* what reading each week's files for escapes costs (``autograder/audit.py``, grader-side,
  once per submission), as a share of grading one submission (target: under 10 %).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SUBMISSION = REPO / "examples" / "class-01" / "alice"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_time(cmd: list[str], repeat: int) -> float:
    return statistics.median(timed(cmd) for _ in range(repeat))


def audit_seconds(repeat: int) -> dict[str, float]:
    """Seconds to audit each week's reference files, as the grader does each submission's."""
    from autograder import audit, config

    course = config.load(REPO)
    seconds = {}
    for week in course.weeks:
        files = {name: (week.solution_dir / name).read_bytes() for name in week.files if name.endswith(".py")}
        started = time.perf_counter()
        for _ in range(repeat):
            audit.audit_files(files, [name.removesuffix(".py") for name in week.carried_files])
        seconds[week.id] = (time.perf_counter() - started) / repeat
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--class-size", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    floor = median_time([sys.executable, "-c", "import torch"], args.repeat)
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        tmp_path = Path(tmp)
        one = median_time(
            [str(BIN / "course"), "grade", "01", str(SUBMISSION), "--out", str(tmp_path / "one.json")], args.repeat
        )
        class_dir = tmp_path / "class"
        for i in range(args.class_size):
            shutil.copytree(SUBMISSION, class_dir / f"student{i:03d}")
        by_jobs = {}
        for jobs in (1, 2):
            out = tmp_path / f"jobs{jobs}" / "gradebook.csv"  # a fresh folder: nothing cached
            by_jobs[jobs] = timed(
                [str(BIN / "course"), "grade-all", "01", str(class_dir), "--out", str(out), "--jobs", str(jobs)]
            )

    n = args.class_size
    print(f"floor: python -c 'import torch'      {floor:7.2f} s   1.00x")
    print(f"course grade (1 submission)          {one:7.2f} s   {one / floor:.2f}x floor   (target < 3x)")
    for jobs, seconds in by_jobs.items():
        print(
            f"course grade-all ({n} copies, --jobs {jobs}) {seconds:7.2f} s   {seconds / floor:.2f}x floor   "
            f"{seconds / n:.2f} s/submission"
        )
    print(f"speed-up of --jobs 2 over --jobs 1:   {by_jobs[1] / by_jobs[2]:.2f}x   (target >= 1.6x)")
    per_submission = by_jobs[1] / n
    for week_id, seconds in audit_seconds(max(args.repeat, 5)).items():
        print(
            f"audit of {week_id:<18} files     {seconds * 1000:7.1f} ms  {seconds / per_submission:6.1%} of "
            "grading one week-01 submission   (target < 10%)"
        )


if __name__ == "__main__":
    main()
