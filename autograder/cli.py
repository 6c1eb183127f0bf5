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
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from autograder import config
from autograder.results import GradeReport

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, highlight=False)


class UsageError(RuntimeError):
    pass


def _week(week_key: str) -> config.Week:
    return config.load().week(week_key)


def _status_cell(passed: bool) -> str:
    return "[green]pass[/green]" if passed else "[red]FAIL[/red]"


def _print_tests(report: GradeReport, *, show_output: bool) -> None:
    table = Table(show_lines=False, expand=False)
    table.add_column("test", overflow="fold")
    table.add_column("result")
    table.add_column("points", justify="right")
    if show_output:
        table.add_column("feedback", overflow="fold", max_width=90)
    for test in report.tests:
        row = [escape(test.name), _status_cell(test.passed), f"{test.score:g}/{test.max_score:g}"]
        if show_output:
            row.append("" if test.passed else escape(test.output))
        table.add_row(*row)
    console.print(table)


def cmd_check(args: argparse.Namespace) -> int:
    from autograder import grading

    week = _week(args.week)
    folder = Path(args.dir) if args.dir else week.assignment_dir
    report = grading.check(week, folder, provided=args.provided)
    _print_tests(report, show_output=True)
    passed, total = report.passed, len(report.tests)
    colour = "green" if passed == total else "yellow"
    console.print(f"[{colour}]{passed}/{total} public checks pass[/{colour}] for week {week.id} ({folder}).")
    _print_earlier_modules(report)
    if report.student_output.strip():
        console.print("Your code printed:\n" + report.student_output, markup=False)
    if passed == total:
        console.print("The hidden tests check more cases: see the handout's grading section.")
    return 0


def _print_earlier_modules(report: GradeReport) -> None:
    """Which earlier weeks' modules the check ran with, and which earlier week to revisit."""
    from autograder import grading

    if not report.carried:
        return
    used = ", ".join(f"{m.describe()}: {'yours' if m.own else 'reference'}" for m in report.carried)
    console.print(f"Earlier weeks' modules: {escape(used)}.")
    blamed = sorted({t.blame for t in report.tests if t.blame})
    for week_id in blamed:
        console.print(
            f"[yellow]Some failures come from your week {week_id} code, not this week's: revisit week {week_id}.[/yellow]"
        )
    if blamed or not report.failed:
        return
    for module, earlier in grading.earlier_checks(report):
        console.print(
            f"[yellow]Your {escape(module.describe())} fails {len(earlier.tests) - earlier.passed} of its own week's "
            f"{len(earlier.tests)} public checks: fix week {module.week.id} first (`course check {module.week.number:02d}`); "
            "the failures above may come from it.[/yellow]"
        )


def cmd_grade(args: argparse.Namespace) -> int:
    from autograder import grading

    week = _week(args.week)
    out = Path(args.out)
    report = grading.grade(week, Path(args.submission), extra_hidden=[out.resolve().parent])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_gradescope(), indent=2))
    _print_tests(report, show_output=args.verbose)
    console.print(
        f"Score: [bold]{report.score:g} / {report.max_score:g}[/bold] in {report.execution_time:.1f} s; wrote {out}"
    )
    return 0


def cmd_grade_all(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder import batch

    week = _week(args.week)
    class_dir = Path(args.class_dir)
    if not class_dir.is_dir():
        raise UsageError(f"class folder {class_dir} does not exist")
    count = sum(1 for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if args.scheduler and args.cluster:
        raise UsageError("give --scheduler (a running Dask scheduler) or --cluster (start one), not both")
    if args.cluster_config and not args.cluster:
        raise UsageError("--cluster-config needs --cluster")
    cluster_options: dict[str, Any] = {}
    if args.cluster_config:
        from autograder import scale

        cluster_options = scale.load_cluster_options(Path(args.cluster_config))
    started = time.monotonic()
    columns = (
        TextColumn("grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("", total=count)

        def done(outcome: batch.Outcome) -> None:
            progress.update(task, advance=1, description=outcome.name + (" (unchanged)" if outcome.cached else ""))

        outcomes = batch.grade_class(
            week,
            class_dir,
            Path(args.out),
            jobs=args.jobs,
            on_done=done,
            scheduler=args.scheduler,
            cluster=args.cluster,
            cluster_options=cluster_options,
        )
    table = Table(title=f"Gradebook: week {week.id}")
    for column, justify in (
        ("student", "left"),
        ("score", "right"),
        ("max", "right"),
        ("tests passed", "right"),
        ("note", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for outcome in outcomes:
        report = outcome.report
        note = outcome.error or (report.first_problem() if report else "")
        if outcome.cached:
            note = f"unchanged, not regraded. {note}".strip()
        table.add_row(
            escape(outcome.name),
            f"{round(report.score, 4) if report else 0:g}",
            f"{round(report.max_score, 4) if report else 0:g}",
            f"{report.passed if report else 0}/{len(report.tests) if report else 0}",
            escape(note),
        )
    console.print(table)
    regraded = sum(not o.cached for o in outcomes)
    if args.scheduler:
        engine = f"the Dask scheduler at {args.scheduler}"
    elif args.cluster:
        engine = f"a {args.cluster} Dask cluster of {args.jobs} worker(s)"
    else:
        engine = f"{args.jobs} job(s)"
    console.print(
        f"{len(outcomes)} submissions ({regraded} graded, {len(outcomes) - regraded} unchanged) in "
        f"{time.monotonic() - started:.1f} s with {engine}; gradebook: {args.out}"
    )
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from autograder import release

    course = config.load()
    if args.student:
        through = course.week(args.provide_through).number if args.provide_through else -1
        provide = [week for week in course.weeks if week.number <= through]
        files = release.student_edition(course, Path(args.student), provide=provide, classroom=args.classroom)
        console.print(f"Wrote the student edition to {args.student} ({len(files)} files).")
        return 0
    weeks = [course.week(args.week)] if args.week else None
    problems = release.release(course, check=args.check, weeks=weeks)
    if args.check:
        for problem in problems:
            console.print(f"[red]out of sync[/red] {problem.path}: {problem.problem}")
        if problems:
            console.print("Run `course release` to regenerate the assignments from the solutions.")
            return 1
        console.print(
            f"[green]assignments are in sync[/green] with the solutions ({len(weeks or course.weeks)} weeks)."
        )
        return 0
    console.print(f"Generated assignments for {len(weeks or course.weeks)} week(s) ({len(problems)} file(s) changed).")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from autograder import validate

    course = config.load()
    weeks = [course.week(args.week)] if args.week else list(course.weeks)
    verdicts = validate.validate(course, weeks, jobs=args.jobs)
    table = Table(title="course validate")
    for column in ("week", "submission", "score", "verdict", "detail"):
        table.add_column(column, overflow="fold")
    for v in verdicts:
        label = v.name if v.kind != "mutant" else f"mutant {v.name}"
        verdict = "[green]ok[/green]" if v.ok else "[red]MISS[/red]"
        table.add_row(v.week, escape(label), f"{v.score:g}/{v.max_score:g}", verdict, escape(v.detail))
    console.print(table)
    misses = [v for v in verdicts if not v.ok]
    mutants = [v for v in verdicts if v.kind == "mutant"]
    caught = sum(v.ok for v in mutants)
    console.print(f"{caught}/{len(mutants)} mutants caught; {len(misses)} problem(s).")
    return 1 if misses else 0


def cmd_export(args: argparse.Namespace) -> int:
    course = config.load()
    out = Path(args.out)
    if args.target == "gradescope":
        from autograder.export import gradescope

        if not args.week:
            raise UsageError("course export gradescope needs a WEEK (one autograder zip per assignment)")
        week = course.week(args.week)
        gradescope.export(course, week, out)
        console.print(f"Wrote the Gradescope autograder for week {week.id} to {out}.")
        console.print(
            "Upload it under Configure Autograder > Zip file upload; students submit " + ", ".join(week.files) + "."
        )
        return 0
    if args.target == "otter":
        from autograder.export import otter

        if not args.week:
            raise UsageError("course export otter needs a WEEK (one otter assignment per week)")
        week = course.week(args.week)
        built = otter.export(course, week, out)
        console.print(f"Wrote the otter-grader assignment for week {week.id} to {out} ({built.name}).")
        console.print(f"Grade a submission: otter run -a {built} {week.files[0]}")
        return 0
    if args.target == "nbgrader":
        from autograder.export import nbgrader

        weeks = [course.week(args.week)] if args.week else list(course.weeks)
        written = nbgrader.export(course, weeks, out)
        console.print(f"Wrote an nbgrader course directory to {out} ({len(written)} source notebook(s)).")
        console.print(f"Next: cd {out} && nbgrader generate_assignment {weeks[0].id}")
        return 0
    if args.target == "prairielearn":
        from autograder.export import prairielearn

        if not args.week:
            raise UsageError("course export prairielearn needs a WEEK (one question per week)")
        week = course.week(args.week)
        prairielearn.export(course, week, out, image=args.image or prairielearn.DEFAULT_IMAGE)
        console.print(f"Wrote the PrairieLearn question and grader for week {week.id} to {out}.")
        console.print(
            f"Copy {out}/questions and {out}/serverFilesCourse into your PrairieLearn course; build and push the "
            f"image: docker build -t {args.image or prairielearn.DEFAULT_IMAGE} {out}/grader-image"
        )
        return 0
    if args.target == "github-classroom":
        from autograder.export import classroom

        written = classroom.export(course, out)
        console.print(f"Wrote the GitHub Classroom workflows to {out} ({len(written)} files); see {out}/README.md.")
        return 0
    raise UsageError(f"unknown export target {args.target!r}")


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
