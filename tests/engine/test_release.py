"""Skeleton generation, the release sync check, and the student edition's contents."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from autograder import config
from autograder.release import (
    GENERATED_NOTE,
    MarkerError,
    make_skeleton,
    release,
    solution_lines,
    student_edition,
)
from tests.helpers import REPO

SOLUTION = REPO / "solutions" / "01-attention" / "attention.py"

SOURCE = '''\
"""Module docstring."""

import math


def area(r):
    """Area of a circle of radius r."""
    # BEGIN SOLUTION: multiply pi by r squared.
    squared = r * r
    return math.pi * squared
    # END SOLUTION


class Shape:
    def perimeter(self, r):
        """Perimeter."""
        if r < 0:
            raise ValueError(r)
        # BEGIN SOLUTION
        return 2 * math.pi * r
        # END SOLUTION


CONSTANT = 3  # stays
'''


# -- make_skeleton ---------------------------------------------------------------


def test_skeleton_replaces_block_with_todo_and_raise():
    skeleton = make_skeleton(SOURCE)
    lines = skeleton.splitlines()
    i = lines.index("    # TODO: multiply pi by r squared.")
    assert lines[i + 1] == "    raise NotImplementedError('TODO: multiply pi by r squared.')"
    assert "squared = r * r" not in skeleton
    assert "return math.pi * squared" not in skeleton
    assert "SOLUTION" not in skeleton


def test_skeleton_uses_block_indentation_and_default_text():
    lines = make_skeleton(SOURCE).splitlines()
    i = lines.index("        # TODO: implement this")
    assert lines[i + 1] == "        raise NotImplementedError('TODO: implement this')"
    assert "return 2 * math.pi * r" not in lines


def test_skeleton_keeps_everything_else():
    skeleton = make_skeleton(SOURCE)
    for kept in (
        '"""Module docstring."""',
        "import math",
        "def area(r):",
        '    """Area of a circle of radius r."""',
        "class Shape:",
        "    def perimeter(self, r):",
        '        """Perimeter."""',
        "        if r < 0:",
        "            raise ValueError(r)",
        "CONSTANT = 3  # stays",
    ):
        assert kept in skeleton.splitlines(), kept
    # Nothing outside the blocks changes: dropping both blocks' lines gives the same text.
    outside = re.sub(r"(?ms)^[ \t]*# BEGIN SOLUTION.*?# END SOLUTION\n", "", SOURCE)
    without_todos = "".join(
        line
        for line in skeleton.splitlines(keepends=True)
        if not line.lstrip().startswith(("# TODO:", "raise NotImplementedError"))
    )
    assert without_todos == outside


def test_skeleton_of_source_without_markers_is_unchanged():
    source = "def f(x):\n    return x + 1\n"
    assert make_skeleton(source) == source


def test_skeleton_todo_text_is_stripped_and_escaped():
    source = "def f():\n    # BEGIN SOLUTION:   don't use `eval`  \n    return 1\n    # END SOLUTION\n"
    skeleton = make_skeleton(source)
    assert "    # TODO: don't use `eval`\n" in skeleton
    namespace: dict = {}
    exec(compile(skeleton, "f.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="TODO: don't use `eval`$"):
        namespace["f"]()


def test_skeleton_runs_and_raises():
    namespace: dict = {}
    exec(compile(make_skeleton(SOURCE), "shapes.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="multiply pi by r squared"):
        namespace["area"](2.0)
    with pytest.raises(NotImplementedError, match="implement this"):
        namespace["Shape"]().perimeter(1.0)
    with pytest.raises(ValueError):  # code before the block still runs
        namespace["Shape"]().perimeter(-1.0)
    assert namespace["CONSTANT"] == 3


def test_nested_begin_raises():
    source = (
        "def f():\n    # BEGIN SOLUTION\n    x = 1\n    # BEGIN SOLUTION: again\n    return x\n    # END SOLUTION\n"
    )
    with pytest.raises(MarkerError) as info:
        make_skeleton(source, "week/f.py")
    message = str(info.value)
    assert message.startswith("week/f.py:4:")
    assert "line 2" in message


def test_end_without_begin_raises():
    source = "def f():\n    return 1\n    # END SOLUTION\n"
    with pytest.raises(MarkerError) as info:
        make_skeleton(source, "f.py")
    assert str(info.value).startswith("f.py:3:")
    assert "without a BEGIN" in str(info.value)


def test_second_end_raises():
    source = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n    # END SOLUTION\n"
    with pytest.raises(MarkerError, match=r"^f\.py:5:"):
        make_skeleton(source, "f.py")


def test_unclosed_begin_raises():
    source = "x = 1\n\ndef f():\n    # BEGIN SOLUTION: never closed\n    return 1\n"
    with pytest.raises(MarkerError) as info:
        make_skeleton(source, "f.py")
    assert str(info.value).startswith("f.py:4:")
    assert "never closed" in str(info.value)


def test_marker_error_default_filename():
    with pytest.raises(MarkerError, match=r"^<solution>:1:"):
        make_skeleton("# END SOLUTION\n")


# -- the real solution's skeleton ------------------------------------------------


def solution_functions() -> list[str]:
    tree = ast.parse(SOLUTION.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]


CALLS = {
    "softmax": lambda f: f(torch.zeros(2, 3)),
    "causal_mask": lambda f: f(4),
    "padding_mask": lambda f: f(torch.tensor([1, 3]), 3),
    "scaled_dot_product_attention": lambda f: f(torch.zeros(1, 2, 4), torch.zeros(1, 3, 4), torch.zeros(1, 3, 5)),
}


def test_real_skeleton_compiles_and_every_function_raises():
    skeleton = make_skeleton(SOLUTION.read_text(), str(SOLUTION))
    code = compile(skeleton, "attention.py", "exec")
    namespace: dict = {"__name__": "attention_skeleton"}
    exec(code, namespace)
    functions = solution_functions()
    assert set(functions) == set(CALLS), "a new function in the solution needs a call in CALLS"
    for name in functions:
        with pytest.raises(NotImplementedError, match="^TODO: "):
            CALLS[name](namespace[name])


def test_real_skeleton_keeps_signatures_and_docstrings():
    solution = ast.parse(SOLUTION.read_text())
    skeleton = ast.parse(make_skeleton(SOLUTION.read_text()))
    assert ast.get_docstring(skeleton) == ast.get_docstring(solution)
    solved = {n.name: n for n in solution.body if isinstance(n, ast.FunctionDef)}
    stubs = {n.name: n for n in skeleton.body if isinstance(n, ast.FunctionDef)}
    assert solved.keys() == stubs.keys()
    for name, node in solved.items():
        assert ast.dump(stubs[name].args) == ast.dump(node.args), name
        assert ast.dump(stubs[name].returns) == ast.dump(node.returns), name
        assert ast.get_docstring(stubs[name]) == ast.get_docstring(node), name


def test_real_skeleton_leaks_no_solution_line():
    skeleton = make_skeleton(SOLUTION.read_text())
    stripped = {line.strip() for line in skeleton.splitlines()}
    for line in solution_lines(SOLUTION.read_text()):
        if len(line) >= 12 and not line.startswith("#"):
            assert line not in stripped, line


def test_solution_lines_returns_inner_lines():
    assert solution_lines(SOURCE) == ["squared = r * r", "return math.pi * squared", "return 2 * math.pi * r"]
    assert solution_lines("x = 1\n") == []


def test_solution_lines_of_real_solution():
    lines = solution_lines(SOLUTION.read_text())
    assert "return output, weights" in lines
    assert not any("SOLUTION" in line for line in lines)
    assert "def softmax(x: Tensor, dim: int = -1) -> Tensor:" not in lines


# -- release and the sync check --------------------------------------------------


def test_real_repository_is_in_sync():
    assert release(config.load(REPO), check=True) == []


@pytest.fixture
def course_copy(tmp_path):
    """A copy of the course's sources in tmp_path, loaded from there."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy2(REPO / "course.yml", tmp_path / "course.yml")
    for name in ("solutions", "autograder/public", "assignments", "weeks"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=ignore)
    course = config.load(tmp_path)
    assert course.root == tmp_path
    assert release(course, check=True) == []
    return course


def problems_of(course) -> list[tuple[Path, str]]:
    return [(problem.path, problem.problem) for problem in release(course, check=True)]


def test_check_reports_edited_file_and_release_fixes_it(course_copy):
    target = course_copy.root / "assignments" / "01-attention" / "attention.py"
    original = target.read_text()
    target.write_text(original.replace("raise NotImplementedError", "return None  # raise NotImplementedError", 1))
    problems = problems_of(course_copy)
    assert len(problems) == 1
    assert problems[0][0] == target
    assert "differs" in problems[0][1]
    # check mode writes nothing
    assert target.read_text() != original
    assert release(course_copy)  # reports what it fixed
    assert target.read_text() == original
    assert release(course_copy, check=True) == []


def test_check_reports_missing_file(course_copy):
    target = course_copy.root / "assignments" / "01-attention" / "attention.py"
    target.unlink()
    problems = problems_of(course_copy)
    assert problems == [(target, "missing")]
    release(course_copy)
    assert target.is_file()
    assert target.read_text().startswith(GENERATED_NOTE)
    assert release(course_copy, check=True) == []


def test_check_reports_missing_public_test(course_copy):
    target = course_copy.root / "assignments" / "01-attention" / "test_attention_public.py"
    target.unlink()
    assert problems_of(course_copy) == [(target, "missing")]


def test_check_reports_missing_folder(course_copy):
    shutil.rmtree(course_copy.root / "assignments")
    problems = problems_of(course_copy)
    assert {problem for _, problem in problems} == {"missing"}
    notebooks = 1  # the first file's notebook edition
    expected = sum(len(week.files) + notebooks + len(list(week.public_dir.glob("*.py"))) for week in course_copy.weeks)
    assert len(problems) == expected
    release(course_copy)
    assert release(course_copy, check=True) == []


def test_check_reports_stray_file(course_copy):
    folder = course_copy.root / "assignments" / "01-attention"
    stray = folder / "notes.py"
    stray.write_text("print('hello')\n")
    problems = problems_of(course_copy)
    assert len(problems) == 1
    assert problems[0][0] == stray
    assert "not generated" in problems[0][1]
    release(course_copy)
    assert not stray.exists()
    assert release(course_copy, check=True) == []


def test_check_ignores_pycache(course_copy):
    cache = course_copy.root / "assignments" / "01-attention" / "__pycache__"
    cache.mkdir()
    (cache / "attention.cpython-311.pyc").write_bytes(b"\0")
    assert release(course_copy, check=True) == []


def test_check_reports_changed_solution(course_copy):
    solution = course_copy.root / "solutions" / "01-attention" / "attention.py"
    solution.write_text(
        solution.read_text().replace('"""Numerically stable softmax', '"""A numerically stable softmax', 1)
    )
    target = course_copy.root / "assignments" / "01-attention" / "attention.py"
    problems = problems_of(course_copy)
    assert [path for path, _ in problems] == [target, target.with_suffix(".ipynb")]  # the notebook holds it too
    assert all("differs" in problem for _, problem in problems)
    release(course_copy)
    assert "A numerically stable softmax" in target.read_text()
    assert release(course_copy, check=True) == []


def test_several_problems_at_once_then_fixed(course_copy):
    folder = course_copy.root / "assignments" / "01-attention"
    (folder / "attention.py").write_text("# edited by hand\n")
    (folder / "test_attention_public.py").unlink()
    (folder / "extra.txt").write_text("x")
    problems = dict((path.name, problem) for path, problem in problems_of(course_copy))
    assert problems.keys() == {"attention.py", "test_attention_public.py", "extra.txt"}
    assert "differs" in problems["attention.py"]
    assert problems["test_attention_public.py"] == "missing"
    assert "not generated" in problems["extra.txt"]
    release(course_copy)
    assert release(course_copy, check=True) == []


def test_generated_assignment_matches_sources(course_copy):
    folder = course_copy.root / "assignments" / "01-attention"
    solution = course_copy.root / "solutions" / "01-attention" / "attention.py"
    public = course_copy.root / "autograder" / "public" / "01-attention" / "test_attention_public.py"
    assert (folder / "attention.py").read_text() == GENERATED_NOTE + make_skeleton(solution.read_text())
    assert (folder / "test_attention_public.py").read_text() == public.read_text()


def test_student_edition_refuses_out_of_sync(course_copy, tmp_path):
    (course_copy.root / "assignments" / "01-attention" / "attention.py").write_text("# edited\n")
    with pytest.raises(ValueError, match="out of sync"):
        student_edition(course_copy, tmp_path / "edition")


# -- the student edition ---------------------------------------------------------


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> tuple[Path, list[Path]]:
    dest = tmp_path_factory.mktemp("edition") / "student"
    files = student_edition(config.load(REPO), dest)
    return dest, files


def edition_texts(dest: Path) -> dict[Path, str]:
    return {p: p.read_text(errors="replace") for p in dest.rglob("*") if p.is_file()}


def test_student_edition_returns_its_files(edition):
    dest, files = edition
    assert files == sorted(p for p in dest.rglob("*") if p.is_file())
    assert files


def test_student_edition_leaves_out_private_paths(edition):
    dest, _ = edition
    for path in dest.rglob("*"):
        relative = path.relative_to(dest).as_posix()
        for private in ("solutions", "hidden", "mutants", "examples"):
            assert private not in relative, relative
        assert "__pycache__" not in relative
        assert not relative.endswith(".pyc")


def test_student_edition_has_handouts_skeletons_and_public_tests(edition):
    dest, _ = edition
    assert (dest / "weeks" / "01-attention" / "README.md").read_text() == (
        REPO / "weeks" / "01-attention" / "README.md"
    ).read_text()
    skeleton = dest / "assignments" / "01-attention" / "attention.py"
    assert skeleton.read_text() == GENERATED_NOTE + make_skeleton(SOLUTION.read_text())
    assert (dest / "assignments" / "01-attention" / "test_attention_public.py").is_file()
    assert (dest / "autograder" / "checks.py").is_file()
    assert (dest / "autograder" / "cli.py").is_file()
    assert (dest / "pyproject.toml").is_file()
    assert (dest / "README.md").is_file()
    assert (dest / "course.yml").is_file()


def test_student_edition_course_yml_has_no_tests(edition):
    dest, _ = edition
    data = yaml.safe_load((dest / "course.yml").read_text())
    real = yaml.safe_load((REPO / "course.yml").read_text())
    assert [week["id"] for week in data["weeks"]] == [week["id"] for week in real["weeks"]]
    for week in data["weeks"]:
        assert week["tests"] == {}
    course = config.load(dest)
    assert all(week.tests == {} for week in course.weeks)
    assert course.week("01").limits == config.load(REPO).week("01").limits


def test_student_edition_contains_no_solution_line(edition):
    dest, _ = edition
    sources = [path.read_text() for path in (REPO / "solutions").rglob("*.py")]
    # A line that some skeleton shows outside its solution blocks (``model.eval()``, a seeded
    # generator) is public by design; every other line of a solution block is a secret.
    public = {line.strip() for source in sources for line in make_skeleton(source).splitlines()}
    secret = {
        line
        for source in sources
        for line in solution_lines(source)
        if len(line) >= 12 and not line.startswith("#") and line not in public
    }
    assert len(secret) > 500  # 673 when written, over ten weeks
    for path, text in edition_texts(dest).items():
        for line in secret:
            assert line not in text, f"{path.relative_to(dest)} contains solution line {line!r}"


def test_student_edition_contains_no_hidden_test(edition):
    dest, _ = edition
    names = {
        name
        for path in (REPO / "autograder" / "hidden").rglob("*.py")
        for name in re.findall(r"^\s*def (test_\w+)", path.read_text(), flags=re.M)
    }
    assert names
    texts = edition_texts(dest)
    for name in names:
        # As whole identifiers: the public test test_causal_mask_small is not the hidden test_causal_mask.
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        for path, text in texts.items():
            assert not pattern.search(text), f"{path.relative_to(dest)} names hidden test {name}"
    hidden_sources = [path.read_text() for path in (REPO / "autograder" / "hidden").rglob("*.py")]
    for path, text in texts.items():
        assert all(source not in text for source in hidden_sources), path


def test_student_edition_refuses_non_empty_dest(tmp_path):
    dest = tmp_path / "student"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        student_edition(config.load(REPO), dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_course_check_runs_in_the_student_edition(edition):
    """A student's `course check` works from the edition alone, without solutions or hidden tests."""
    root = edition[0]
    env = {**os.environ, "COLUMNS": "200", "COURSE_SANDBOX": "none", "PYTHONWARNINGS": "ignore"}
    env.pop("COURSE_ROOT", None)
    result = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "check", "01"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "0/5 public checks pass" in result.stdout
    assert "not implemented yet" in result.stdout
    graded = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", "01", "assignments/01-attention"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert graded.returncode == 2
    assert "does not exist" in graded.stderr


def test_markers_tolerate_trailing_spaces_and_crlf():
    source = "def f():\r\n    # BEGIN SOLUTION   \r\n    return 1\r\n    # END SOLUTION \r\n"
    skeleton = make_skeleton(source)
    assert "return 1" not in skeleton
    assert "raise NotImplementedError('TODO: implement this')" in skeleton
