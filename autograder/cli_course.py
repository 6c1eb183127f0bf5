"""`course release`, `course validate`, `course export` and `course new-week`: work on the course itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from autograder import config
from autograder.terminal import UsageError, console


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


def cmd_new_week(args: argparse.Namespace) -> int:
    from autograder import scaffold

    course = config.load()
    written = scaffold.new_week(course, args.week_id, title=args.title, module=args.module)
    for path in written:
        console.print(f"  {path.relative_to(course.root)}")
    console.print(f"Scaffolded week {args.week_id} ({len(written)} files). Next: `course validate {args.week_id}`.")
    return 0
