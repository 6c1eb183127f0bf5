"""`course validate`: prove each week's grading is right.

For every week: the reference solution earns full marks and passes every public
test, every hidden test is worth points in course.yml, the generated skeleton
earns zero, and every known-wrong variant in ``autograder/mutants/NN-slug/``
loses points. A mutant file holds only the functions it breaks; it is appended
to a copy of the reference file (so its definitions win), or to the file named
by a first line ``# target: other.py``. Or it is a list of substitutions,
``REPLACE = [(old, new), ...]``, applied to that file: each ``old`` must occur
exactly once, so a mutant that no longer matches the reference fails loudly
instead of testing nothing.
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder import batch
from autograder.config import Course, Week

TARGET_PREFIX = "# target:"


@dataclass
class Verdict:
    week: str
    kind: str  # "imports", "reference", "public", "skeleton" or "mutant"
    name: str
    score: float
    max_score: float
    ok: bool
    detail: str


def mutant_target(week: Week, mutant: Path) -> str:
    first = mutant.read_text().splitlines()[:1]
    if first and first[0].startswith(TARGET_PREFIX):
        return first[0][len(TARGET_PREFIX) :].strip()
    return week.files[0]


def mutant_edits(source: str) -> list[tuple[str, str]] | None:
    """The ``REPLACE = [(old, new), ...]`` of a substitution mutant; None for one that appends definitions."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "REPLACE" for t in node.targets):
            edits = ast.literal_eval(node.value)
            if not (isinstance(edits, list) and edits and all(_is_edit(edit) for edit in edits)):
                raise ValueError("REPLACE must be a non-empty list of (old, new) string pairs")
            return [(old, new) for old, new in edits]
    return None


def _is_edit(edit: object) -> bool:
    return isinstance(edit, tuple) and len(edit) == 2 and all(isinstance(text, str) for text in edit)


def build_mutant(week: Week, mutant: Path, dest: Path) -> Path:
    """A submission folder: the reference folder (code and any lab artefacts) with ``mutant`` applied to its target."""
    dest.mkdir(parents=True)
    for path in sorted(week.solution_dir.iterdir()):
        if path.is_file():
            shutil.copyfile(path, dest / path.name)
    target = dest / mutant_target(week, mutant)
    source = mutant.read_text()
    edits = mutant_edits(source)
    if edits is None:
        target.write_text(target.read_text() + f"\n\n# ---- mutant {mutant.stem} ----\n" + source)
        return dest
    text = target.read_text()
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise ValueError(f"mutant {mutant.name}: {old!r} occurs {count} times in {target.name}, not once")
        text = text.replace(old, new)
    target.write_text(text)
    return dest


def imported_modules(source: str) -> set[str]:
    """Top-level module names a file imports (``import a``, ``from a import b``; relative imports ignored)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def check_uses(course: Course, week: Week) -> list[str]:
    """Problems with ``week``'s imports of other weeks' modules against its ``uses:`` in course.yml."""
    owner = {name.removesuffix(".py"): other for other in course.weeks for name in other.files}
    problems: list[str] = []
    imported: set[str] = set()
    for name in week.files:
        for module in sorted(imported_modules((week.solution_dir / name).read_text()) & set(owner)):
            other = owner[module]
            if other.id == week.id:
                continue  # a week's second file may import its first (flash_triton uses flash)
            imported.add(other.id)
            if other.number >= week.number:
                problems.append(f"{name} imports {module} of week {other.id}, which is not an earlier week")
            elif other.id not in week.uses:
                problems.append(f"{name} imports {module} (week {other.id}) but course.yml's uses: does not list it")
    for unused in sorted(set(week.uses) - imported):
        problems.append(f"course.yml's uses: lists {unused} but no file of the week imports its modules")
    return problems


def validate_week(week: Week, *, jobs: int, course: Course | None = None) -> list[Verdict]:
    mutants = sorted(p for p in week.mutants_dir.glob("*.py")) if week.mutants_dir.is_dir() else []
    with tempfile.TemporaryDirectory(prefix="course-validate-") as tmp:
        submissions: dict[str, tuple[str, Path]] = {
            "reference": ("reference", week.solution_dir),
            "skeleton": ("skeleton", week.assignment_dir),
        }
        verdicts = []
        if course is not None:
            problems = check_uses(course, week)
            detail = "; ".join(problems) or f"imports only the weeks it uses ({', '.join(week.uses) or 'none'})"
            verdicts.append(Verdict(week.id, "imports", "uses", 0, 0, not problems, detail))
        for mutant in mutants:
            try:
                submissions[f"mutant:{mutant.stem}"] = ("mutant", build_mutant(week, mutant, Path(tmp) / mutant.stem))
            except (ValueError, SyntaxError) as exc:
                verdicts.append(Verdict(week.id, "mutant", mutant.stem, 0, 0, False, f"cannot build: {exc}"))
        items = [(key, path) for key, (_, path) in submissions.items()]
        for outcome in batch.grade_many(week, items, jobs=jobs):
            kind = submissions[outcome.name][0]
            name = outcome.name.split(":", 1)[-1]
            report = outcome.report
            if report is None:
                verdicts.append(Verdict(week.id, kind, name, 0, 0, False, f"grader error: {outcome.error}"))
                continue
            score, max_score = round(report.score, 4), round(report.max_score, 4)  # as results.json has them
            failed = [t.name for t in report.failed]
            if kind == "reference":
                pointless = [t.name for t in report.tests if t.max_score == 0]
                ok = score == max_score == week.max_score and not failed and not pointless
                detail = "full marks"
                if failed:
                    detail = f"failed: {', '.join(failed)}"
                elif pointless:
                    detail = f"tests with no points in course.yml: {', '.join(pointless)}"
                elif not ok:
                    detail = f"max score {max_score:g} differs from course.yml's {week.max_score:g}"
            elif kind == "skeleton":
                ok = score == 0
                detail = "zero" if ok else f"passes: {', '.join(t.name for t in report.tests if t.passed)}"
            else:
                ok = score < max_score
                detail = f"caught by {len(failed)} tests, e.g. {failed[0]}" if ok else "NOT CAUGHT: earns full marks"
            verdicts.append(Verdict(week.id, kind, name, score, max_score, ok, detail))
        for outcome in batch.grade_many(week, [("public", week.solution_dir)], jobs=1, public=True):
            public = outcome.report
            failed = [t.name for t in public.failed] if public else []
            ok = public is not None and bool(public.tests) and not failed
            detail = outcome.error or (f"failed: {', '.join(failed)}" if failed else "passes every public test")
            verdicts.append(
                Verdict(
                    week.id,
                    "public",
                    "reference (public tests)",
                    public.score if public else 0,
                    public.max_score if public else 0,
                    ok,
                    detail,
                )
            )
    order = {"imports": 0, "reference": 1, "public": 2, "skeleton": 3, "mutant": 4}
    verdicts.sort(key=lambda v: (order[v.kind], v.name))
    if len(mutants) == 0:
        verdicts.append(Verdict(week.id, "mutant", "(none)", 0, 0, False, f"no mutants in {week.mutants_dir}"))
    return verdicts


def validate(course: Course, weeks: list[Week] | None = None, *, jobs: int = 2) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for week in weeks or list(course.weeks):
        verdicts += validate_week(week, jobs=jobs, course=course)
    return verdicts
