"""The `course` command.

    course check WEEK [DIR] [--provided]          run the public tests on your files (and your earlier weeks')
    course grade WEEK SUBMISSION --out FILE       grade one submission (Gradescope results.json)
    course grade-all WEEK CLASS_DIR --out CSV     grade a class folder in parallel, write a gradebook
        [--scheduler tcp://HOST:8786 | --cluster local|ssh|slurm|kubernetes]   ... on a Dask cluster
    course release [--check] [--week W] [--student DIR [--provide-through W]]
                                                  generate skeletons / check they are in sync / student edition
    course validate [WEEK]                        reference full marks, skeleton zero, mutants caught

Exit codes: 0 when the command did its job (whatever the scores), 1 when a check
found a problem (release --check, validate), 2 when the grader could not run.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from typing import NoReturn

from rich.markup import escape

from autograder import config
from autograder.cli_course import cmd_export, cmd_new_week, cmd_release, cmd_validate
from autograder.cli_grade import cmd_check, cmd_grade, cmd_grade_all
from autograder.terminal import UsageError, err


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="Auto-grader for the transformers course: check, grade, release and validate weeks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "WEEK is a number (01 or 1), an id (01-attention) or a slug (attention).\n"
            "Exit codes: 0 done (whatever the score), 1 a check found problems, 2 the grader could not run.\n"
            "Student code runs in a separate sandboxed process (bubblewrap when run as root)."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="run the public tests on your files, with hints")
    p.add_argument("week", metavar="WEEK")
    p.add_argument("dir", nargs="?", metavar="DIR", help="folder with your files (default: assignments/WEEK)")
    p.add_argument(
        "--provided",
        action="store_true",
        help="run with the earlier weeks' provided reference modules instead of your own (when your course ships them)",
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("grade", help="grade one submission with the hidden tests; write Gradescope results.json")
    p.add_argument("week", metavar="WEEK")
    p.add_argument("submission", metavar="SUBMISSION_DIR")
    p.add_argument("--out", default="results.json", help="where to write results.json (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="print each test's feedback")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("grade-all", help="grade every subfolder of a class folder in parallel; write a gradebook")
    p.add_argument("week", metavar="WEEK")
    p.add_argument("class_dir", metavar="CLASS_DIR")
    p.add_argument("--out", default="gradebook.csv", help="gradebook CSV; results go beside it (default: %(default)s)")
    p.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel graders, or --cluster's workers (default: CPU count)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on a running Dask scheduler (tcp://HOST:8786), one task per submission; needs the scale extra",
    )
    p.add_argument(
        "--cluster",
        choices=["local", "ssh", "slurm", "kubernetes"],
        help="start a Dask cluster of --jobs workers for this run (local, SSH hosts, SLURM jobs, Kubernetes pods)",
    )
    p.add_argument(
        "--cluster-config",
        metavar="FILE",
        help="YAML keyword arguments for --cluster's Dask cluster class (hosts, queue, image...)",
    )
    p.set_defaults(func=cmd_grade_all)

    p = sub.add_parser(
        "release", help="generate assignments/ from solutions/ (or check them, or build the student edition)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if assignments/ is out of sync; write nothing")
    group.add_argument(
        "--student", metavar="DIR", help="write the student edition (no solutions or hidden tests) to DIR"
    )
    p.add_argument("--week", metavar="WEEK", help="only this week's assignment folder (default: every week)")
    p.add_argument(
        "--provide-through",
        metavar="WEEK",
        help="with --student: ship the reference files of every week up to WEEK in provided/ (weeks past their due date)",
    )
    p.add_argument(
        "--classroom",
        action="store_true",
        help="with --student: add GitHub Classroom's autograding workflow (course check NN on every push)",
    )
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("export", help="export to Gradescope, otter-grader, nbgrader, PrairieLearn or GitHub Classroom")
    p.add_argument(
        "target", choices=["gradescope", "otter", "nbgrader", "prairielearn", "github-classroom"], help="the platform"
    )
    p.add_argument("week", nargs="?", metavar="WEEK", help="the week (nbgrader: all weeks when omitted)")
    p.add_argument(
        "--out",
        required=True,
        help="the zip (gradescope), the assignment folder (otter), the course directory (nbgrader), the question "
        "and grader folder (prairielearn) or the workflows folder (github-classroom)",
    )
    p.add_argument("--image", help="prairielearn: the grader's Docker image name (default: transformers-course/grader)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("validate", help="reference gets full marks, skeleton zero, every mutant loses points")
    p.add_argument("week", nargs="?", metavar="WEEK")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel graders (default: CPU count)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("new-week", help="scaffold a week: handout, solution, tests, mutant, course.yml, README row")
    p.add_argument("week_id", metavar="NN-slug", help="the new week's id, e.g. 12-retrieval")
    p.add_argument("--title", help="the week's title (default: from the slug)")
    p.add_argument("--module", help="the student file's module name (default: the slug, dashes as underscores)")
    p.set_defaults(func=cmd_new_week)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The grader's own tensor work is small (references on test-sized inputs) and runs beside the student's
    # process: one thread avoids contention, and measured 10-25% faster `course grade` on 2 busy cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    if getattr(args, "jobs", 1) < 1:
        err.print("error: --jobs must be at least 1")
        return 2
    from autograder.grading import GraderError
    from autograder.release import MarkerError
    from autograder.sandbox import SandboxUnavailable
    from autograder.scale import ScaleError

    try:
        return int(args.func(args))
    except (
        config.ConfigError,
        GraderError,
        SandboxUnavailable,
        MarkerError,
        UsageError,
        ScaleError,
        FileExistsError,
        ValueError,
    ) as exc:
        err.print("[red]error:[/red] " + escape(str(exc)))
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def entry() -> NoReturn:
    """The ``course`` command: :func:`main`, then a quick exit.

    Once the work is done and written, the exit handlers run (the zygote and its
    temporary folders are cleaned up) and the process ends without tearing down its
    modules: unloading torch costs 0.7 s on a 2-core machine, a sixth of grading one
    week-01 submission. An exception takes the ordinary, slow path.
    """
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
