"""`course new-week NN-slug`: every place a new week needs, filled in with one working example.

It writes

* ``weeks/NN-slug/README.md``: the handout's outline,
* ``solutions/NN-slug/<module>.py``: the reference, one function between ``# BEGIN/END SOLUTION`` markers,
* ``autograder/hidden/NN-slug/test_<module>.py``: a hidden test grading it against the reference,
* ``autograder/public/NN-slug/test_<module>_public.py``: a public test,
* ``autograder/mutants/NN-slug/<mutant>.py``: a known-wrong variant the hidden test catches,

adds the week's block to ``course.yml`` and its row to the README's weeks table (as text, where
the week's number puts them: comments and formatting stay as they are), and generates
``assignments/NN-slug/`` with ``course release``. ``course validate NN`` then passes: the
reference earns full marks, the skeleton zero, the mutant loses its point. Replace the example
with the week's real content and keep the four places in step.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from autograder import config, release

ID = re.compile(r"(?P<number>\d\d)-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)")
ROW = re.compile(r"^\| \[(?P<number>\d\d) [^]]+\]\(weeks/[^/]+/README\.md\) \|.*\|$")
ITEM = re.compile(r"^(?P<indent>\s*)- id:\s*['\"]?(?P<number>\d\d)-")
PLAIN_TITLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ,()'/-]*")
RESERVED = {"torch", "triton", "numpy", "autograder", "conftest", "pytest", "yaml"}


class ScaffoldError(ValueError):
    """The week cannot be scaffolded (a taken id, slug or module name, a file already there)."""


@dataclass(frozen=True)
class NewWeek:
    id: str
    title: str
    module: str

    @property
    def number(self) -> str:
        return self.id[:2]

    @property
    def slug(self) -> str:
        return self.id[3:]

    @property
    def function(self) -> str:
        """The example function's name: the module's, so that no two solution files define the same name."""
        return f"{self.module}_scale"

    @property
    def test_name(self) -> str:
        return f"test_{self.function}"


def default_module(slug: str) -> str:
    return slug.replace("-", "_")


def plan(course: config.Course, week_id: str, *, title: str | None = None, module: str | None = None) -> NewWeek:
    """Check the new week's id, slug and module name against the course; refuse anything taken."""
    match = ID.fullmatch(week_id)
    if match is None:
        raise ScaffoldError(
            f"expected a week id NN-slug like '12-retrieval' (lower case, digits, dashes), got {week_id!r}"
        )
    number, slug = int(match["number"]), match["slug"]
    for week in course.weeks:
        if week.id == week_id:
            raise ScaffoldError(f"week {week_id} already exists")
        if week.id.split("-", 1)[1] == slug:
            raise ScaffoldError(f"the slug {slug!r} is taken by week {week.id}")
        if week.number == number:
            raise ScaffoldError(f"week number {match['number']} is taken by week {week.id}")
    module = module or default_module(slug)
    if not module.isidentifier() or module != module.lower() or module.startswith("_"):
        raise ScaffoldError(f"--module: expected a lower-case Python module name, got {module!r}")
    if module in RESERVED or module in sys.stdlib_module_names or module.startswith("test"):
        raise ScaffoldError(f"--module: {module!r} would shadow a module the grader or Python needs; choose another")
    for week in course.weeks:
        if f"{module}.py" in week.files:
            raise ScaffoldError(f"--module: {module}.py is already a file of week {week.id}")
    title = (title or slug.replace("-", " ").capitalize()).strip()
    if not title or "\n" in title:
        raise ScaffoldError("--title: expected one line of text")
    return NewWeek(week_id, title, module)


# -- the files -------------------------------------------------------------------------------


def handout(new: NewWeek) -> str:
    return f"""# Week {new.number} — {new.title}

**What you will build.** TODO: one paragraph: what students write this week, and why it matters.

**Files you edit:** `assignments/{new.id}/{new.module}.py` (each function body is a
`raise NotImplementedError` stub; keep the signatures exactly as given).

---

## 1. The idea

TODO: the intuition, with a small worked example.

## 2. The math, with shapes

TODO: the formulas, every tensor's shape.

## 3. Pitfalls

TODO: the mistakes the hidden tests name (each one has a mutant in `autograder/mutants/{new.id}/`).

## 4. The API you implement

### `{new.function}(x, factor)`

Returns `x` with every element multiplied by `factor` (same shape and dtype).

## 5. How you are graded

`course check {new.number}` runs the public tests on your files; the hidden tests check more cases.
"""


def solution(new: NewWeek) -> str:
    return f'''"""Week {new.number}: {new.title}.

TODO: what this file holds, the shapes' letters, the rules (ops students may not call).
"""

from __future__ import annotations

from torch import Tensor


def {new.function}(x: Tensor, factor: float) -> Tensor:
    """``x`` with every element multiplied by ``factor`` (an example: replace it with the week's functions).

    Args:
        x: any shape and floating dtype.
        factor: the scale.

    Returns:
        A tensor of ``x``'s shape and dtype.
    """
    # BEGIN SOLUTION: multiply `x` by `factor`.
    return x * factor
    # END SOLUTION
'''


def hidden_test(new: NewWeek) -> str:
    return f'''"""Hidden tests for week {new.number} ({new.title}).

Expected values come from the reference solution (``reference``) run here, in the trusted
grader; ``student`` calls run in the sandboxed worker. Points per test live in course.yml.
"""

from __future__ import annotations

import torch

from autograder import assert_close, randn


def {new.test_name}(student, reference):
    x = randn(3, 5, dtype=torch.float32, seed=0)
    assert_close(
        student.{new.function}(x, 2.5),
        reference.{new.function}(x, 2.5),
        name="{new.function}(x, 2.5)",
        mistakes={{"added the factor instead of multiplying": x + 2.5}},
        hint="multiply every element by `factor`.",
    )
'''


def public_test(new: NewWeek) -> str:
    return f'''"""Public tests for week {new.number}: run them with `course check {new.number}`."""

import torch

from autograder import assert_close


def test_{new.function}_small(student):
    x = torch.arange(6.0).reshape(2, 3)
    assert_close(student.{new.function}(x, 2.0), x * 2.0, name="{new.function}(x, 2.0)")
'''


def mutant(new: NewWeek) -> str:
    return f'''"""Adds the factor instead of multiplying by it."""


def {new.function}(x, factor):
    return x + factor
'''


def files(new: NewWeek) -> dict[str, str]:
    """Path relative to the course root -> text, for every new file."""
    return {
        f"weeks/{new.id}/README.md": handout(new),
        f"solutions/{new.id}/{new.module}.py": solution(new),
        f"autograder/hidden/{new.id}/test_{new.module}.py": hidden_test(new),
        f"autograder/public/{new.id}/test_{new.module}_public.py": public_test(new),
        f"autograder/mutants/{new.id}/adds_factor.py": mutant(new),
    }


# -- course.yml and the README's weeks table, edited as text -----------------------------------


def yaml_title(title: str) -> str:
    if PLAIN_TITLE.fullmatch(title) and yaml.safe_load(title) == title:
        return title
    return json.dumps(title, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def course_block(new: NewWeek, indent: str) -> list[str]:
    inner = indent + "  "
    return [
        f"{indent}- id: {new.id}\n",
        f"{inner}title: {yaml_title(new.title)}\n",
        f"{inner}files: [{new.module}.py]\n",
        f"{inner}# uses: [NN-slug]          # the earlier weeks whose modules {new.module}.py imports\n",
        f"{inner}tests:\n",
        f"{inner}  {new.test_name}: 1\n",
    ]


def with_course_block(text: str, new: NewWeek) -> str:
    """``course.yml``'s text with the new week's block among the weeks, in number order."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines) if re.match(r"weeks:\s*(#.*)?$", line)), None)
    if start is None:
        raise ScaffoldError(f"{config.CONFIG_NAME} has no top-level `weeks:` list")
    end = len(lines)  # the weeks list ends at the next top-level key
    for i in range(start + 1, len(lines)):
        if lines[i].strip() and not lines[i][0].isspace() and not lines[i].startswith(("#", "-")):
            end = i
            break
    items = [(i, m) for i in range(start + 1, end) if (m := ITEM.match(lines[i]))]
    indent = items[0][1]["indent"] if items else "  "
    at = next((i for i, m in items if int(m["number"]) > int(new.number)), None)
    if at is None:
        at = end
        while at > start + 1 and not lines[at - 1].strip():
            at -= 1  # right after the last week's last line, before the blank lines that follow it
    else:
        while at > start + 1 and lines[at - 1].strip().startswith("#"):
            at -= 1  # before the comment that introduces the later week
    return "".join([*lines[:at], *course_block(new, indent), *lines[at:]])


def readme_row(new: NewWeek) -> str:
    what = new.title.replace("|", "\\|")
    return f"| [{new.number} {new.slug}](weeks/{new.id}/README.md) | {what} | 1 (1 cases, 1 points) | 1/1 |\n"


def with_readme_row(text: str, new: NewWeek) -> str:
    lines = text.splitlines(keepends=True)
    rows = [(i, int(m["number"])) for i, line in enumerate(lines) if (m := ROW.match(line.rstrip("\n")))]
    if not rows:
        raise ScaffoldError(
            "README.md has no weeks table (rows like `| [01 attention](weeks/01-attention/README.md) |`)"
        )
    at = next((i for i, number in rows if number > int(new.number)), rows[-1][0] + 1)
    return "".join([*lines[:at], readme_row(new), *lines[at:]])


def new_week(course: config.Course, week_id: str, *, title: str | None = None, module: str | None = None) -> list[Path]:
    """Scaffold the week in ``course``'s folder; returns every file written or changed."""
    new = plan(course, week_id, title=title, module=module)
    root = course.root
    written = {root / rel: text for rel, text in files(new).items()}
    taken = [str(path.relative_to(root)) for path in written if path.exists()]
    for folder in ("weeks", "solutions", "assignments", "autograder/hidden", "autograder/public", "autograder/mutants"):
        if (root / folder / new.id).exists():
            taken.append(f"{folder}/{new.id}/")
    if taken:
        raise ScaffoldError(f"already there: {', '.join(sorted(set(taken)))}")
    course_yml = root / config.CONFIG_NAME
    readme = root / "README.md"
    course_text = with_course_block(course_yml.read_text(), new)
    readme_text = with_readme_row(readme.read_text(), new) if readme.is_file() else None
    changed = config.parse(yaml.safe_load(course_text), root)  # refuse before writing anything
    week = changed.week(new.id)
    for path, text in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    course_yml.write_text(course_text)
    if readme_text is not None:
        readme.write_text(readme_text)
    release.release(changed, weeks=[week])
    generated = sorted(p for p in week.assignment_dir.rglob("*") if p.is_file())
    return [*written, course_yml, *([readme] if readme_text is not None else []), *generated]
