"""`course check`, `course grade` and `course grade-all`: grade, then show the typed report as tables."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from autograder.results import GradeReport
from autograder.terminal import UsageError, console, err, week_named


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

    week = week_named(args.week)
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

    week = week_named(args.week)
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
    from autograder.jobs import Outcome

    week = week_named(args.week)
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

        def done(outcome: Outcome) -> None:
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
