"""Later weeks import earlier weeks' modules: one old mistake costs points in its own week only.

A week's files import earlier weeks by module name (``from block import ...``); course.yml
says which (``uses:``) and where the modules come from when the week is graded
(``carry: reference`` or ``student``).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import sys
from pathlib import Path

import pytest
import yaml

from autograder import config, grading, reference, validate
from tests.helpers import REPO

WRONG_WEEK_02 = REPO / "autograder" / "mutants" / "02-multihead" / "scale_by_d_model.py"


def _parse(weeks: list[dict[str, object]], **defaults: object) -> config.Course:
    return config.parse({"title": "t", "defaults": defaults, "weeks": weeks}, REPO)


def _week(week_id: str, files: list[str], **extra: object) -> dict[str, object]:
    return {"id": week_id, "title": week_id, "files": files, "tests": {"test_x": 1}, **extra}


# -- course.yml -----------------------------------------------------------------------------------


def test_uses_are_closed_over_and_ordered():
    course = _parse(
        [
            _week("01-a", ["a.py"]),
            _week("02-b", ["b.py"], uses=["01-a"]),
            _week("03-c", ["c.py"]),
            _week("04-d", ["d.py"], uses=["03-c", "02-b"], carry="student"),
        ]
    )
    week = course.week("04")
    assert [w.id for w in week.carried] == ["01-a", "02-b", "03-c"]  # transitively, in course order
    assert list(week.carried_files) == ["a.py", "b.py", "c.py"]
    assert week.carry == "student"
    assert course.week("02").carry == "reference"  # the default


@pytest.mark.parametrize(
    ("weeks", "message"),
    [
        ([_week("01-a", ["a.py"], uses=["02-b"]), _week("02-b", ["b.py"])], "not an earlier week"),
        ([_week("01-a", ["a.py"], uses=["01-a"])], "not an earlier week"),
        ([_week("01-a", ["a.py"]), _week("02-b", ["b.py"], carry="mine")], "carry"),
        ([_week("01-a", ["a.py"]), _week("02-b", ["a.py"])], "already a file of week 01-a"),
    ],
)
def test_bad_uses_and_carry_are_config_errors(weeks, message):
    with pytest.raises(config.ConfigError, match=message):
        _parse(weeks)


def test_default_carry_is_configurable():
    course = _parse([_week("01-a", ["a.py"])], carry="student")
    assert course.week("01").carry == "student"


# -- the solutions: no pasted code ----------------------------------------------------------------


def _definitions(path: Path) -> dict[str, ast.FunctionDef | ast.ClassDef]:
    tree = ast.parse(path.read_text())
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def _parameters(node: ast.FunctionDef) -> list[str]:
    return [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]


def _body(node: ast.FunctionDef) -> str:
    """The function's code without its docstring."""
    body = (
        node.body[1:]
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        else node.body
    )
    return "\n".join(ast.unparse(statement) for statement in body)


def _same_function(a: ast.FunctionDef, b: ast.FunctionDef) -> bool:
    """Same parameters and (nearly) the same code: a copy, perhaps lightly edited."""
    return _parameters(a) == _parameters(b) and difflib.SequenceMatcher(None, _body(a), _body(b)).ratio() > 0.6


def test_every_function_and_class_is_defined_in_one_solution_file():
    """No copies: a name defined in two weeks is a subclass of the earlier class or another function.

    (Week 01's ``causal_mask(seq_len)`` and week 06's ``causal_mask(query_length, key_length,
    attention_mask)`` are two functions, as are BERT's and GPT-2's ``from_hf_state_dict`` key
    maps; week 10's ``GPT`` extends week 06's.)
    """
    seen: dict[str, tuple[Path, ast.FunctionDef | ast.ClassDef]] = {}
    copies = []
    for path in sorted((REPO / "solutions").glob("*/*.py")):
        for name, node in _definitions(path).items():
            if name not in seen:
                seen[name] = (path, node)
                continue
            first_path, first = seen[name]
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base).split(".")[-1] for base in node.bases}
                ok = name in bases and any(isinstance(b, ast.Attribute) for b in node.bases)  # class GPT(gpt.GPT)
            else:
                ok = isinstance(first, ast.FunctionDef) and not _same_function(node, first)
            if not ok:
                copies.append(f"{name}: {first_path.relative_to(REPO)} and {path.relative_to(REPO)}")
    assert not copies, f"defined in several solution files: {copies}"


def test_no_paste_stubs_anywhere():
    for folder in ("solutions", "assignments", "weeks"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".md", ".ipynb"):
                text = path.read_text().lower()
                assert "todo: paste" not in text, path
                assert "pasted" not in text, path


def test_every_week_imports_exactly_the_weeks_it_uses(course):
    problems = {week.id: validate.check_uses(course, week) for week in course.weeks}
    assert not any(problems.values()), problems


def test_validate_rejects_undeclared_later_and_unused_imports(tmp_path):
    files = {
        "01-a/a.py": "import torch\n",
        "02-b/b.py": "from a import x  # declared\n",
        "03-c/c.py": "import a\nfrom b import y\n",  # b is not declared
        "04-d/d.py": "from e import z\n",  # e is a later week
        "05-e/e.py": "import math\n",  # declares a week it never imports
    }
    for name, text in files.items():
        (tmp_path / "solutions" / name).parent.mkdir(parents=True)
        (tmp_path / "solutions" / name).write_text(text)
    course = config.parse(
        {
            "title": "t",
            "weeks": [
                _week("01-a", ["a.py"]),
                _week("02-b", ["b.py"], uses=["01-a"]),
                _week("03-c", ["c.py"], uses=["01-a"]),
                _week("04-d", ["d.py"]),
                _week("05-e", ["e.py"], uses=["01-a"]),
            ],
        },
        tmp_path,
    )
    problems = {week.id: validate.check_uses(course, week) for week in course.weeks}
    assert problems["01-a"] == problems["02-b"] == []
    assert problems["03-c"] == ["c.py imports b (week 02-b) but course.yml's uses: does not list it"]
    assert problems["04-d"] == ["d.py imports e of week 05-e, which is not an earlier week"]
    assert problems["05-e"] == ["course.yml's uses: lists 01-a but no file of the week imports its modules"]


# -- the trusted loader -----------------------------------------------------------------------------


def test_reference_load_binds_earlier_modules_without_leaving_them_in_sys_modules(course):
    before = {name for name in ("multihead", "block", "bert") if name in sys.modules}
    bert = reference.load(course.week("05"))
    assert {name for name in ("multihead", "block", "bert") if name in sys.modules} == before
    assert bert.TransformerBlock.__module__.endswith("_block")  # week 04's class, not a copy


def test_load_file_takes_earlier_modules_from_the_given_sources(course, tmp_path):
    wrong = tmp_path / "multihead.py"
    wrong.write_text((course.week("02").solution_dir / "multihead.py").read_text() + "\nMARK = 'mine'\n")
    sources = reference.carried_sources(course.week("04"), own=tmp_path)
    assert sources["multihead"] == wrong
    block = reference.load_file(course.week("04").solution_dir / "block.py", sources)
    assert sys.modules[block.MultiHeadAttention.__module__].MARK == "mine"


# -- grading: the cascade is gone ---------------------------------------------------------------------


def _with_wrong_week_02(week: config.Week, folder: Path) -> Path:
    """The reference files of ``week`` plus the student's own (wrong) week-02 module."""
    folder.mkdir(parents=True)
    for name in week.files:
        (folder / name).write_text((week.solution_dir / name).read_text())
    wrong = validate.build_mutant(config.load().week("02"), WRONG_WEEK_02, folder / "week02")
    (folder / "multihead.py").write_text((wrong / "multihead.py").read_text())
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("week_id", ["04", "05"])
def test_a_wrong_week_02_costs_nothing_with_carry_reference(course, tmp_path, week_id):
    week = course.week(week_id)
    assert week.carry == "reference"
    report = grading.grade(week, _with_wrong_week_02(week, tmp_path / "student"))
    assert report.score == pytest.approx(report.max_score)
    assert report.max_score == pytest.approx(week.max_score)
    assert [m.own for m in report.carried] == [False] * len(week.carried)


@pytest.mark.slow
@pytest.mark.parametrize("week_id", ["04", "05"])
def test_with_carry_student_only_tests_naming_week_02_lose_points(course, tmp_path, week_id):
    week = dataclasses.replace(course.week(week_id), carry="student")
    report = grading.grade(week, _with_wrong_week_02(week, tmp_path / "student"))
    failed = [t for t in report.tests if not t.passed]
    assert failed, "the wrong week-02 module should show in some week-{week_id} tests"
    for test in failed:
        assert test.blame == "02-multihead", test.name
        assert "week 02-multihead" in test.output, test.output
        assert "multihead.py" in test.output, test.output
    assert any("Graded with your own earlier modules: multihead.py" in note for note in report.notes)


@pytest.mark.slow
def test_this_weeks_own_mistake_is_not_blamed_on_an_earlier_week(course, tmp_path):
    week = dataclasses.replace(course.week("04"), carry="student")
    folder = _with_wrong_week_02(week, tmp_path / "student")
    mutant = REPO / "autograder" / "mutants" / "04-block" / "missing_residual.py"
    (folder / "block.py").write_text(
        (validate.build_mutant(week, mutant, tmp_path / "mutant") / "block.py").read_text()
    )
    report = grading.grade(week, folder)
    residual = [t for t in report.tests if not t.passed and t.blame is None]
    assert residual, "the block's own mistake must stay this week's"


@pytest.mark.slow
def test_check_names_the_earlier_week_to_revisit(course, tmp_path):
    week = course.week("04")
    assignments = tmp_path / "assignments"
    _with_wrong_week_02(week, assignments / week.id)
    mine = assignments / "02-multihead"
    mine.mkdir()
    (assignments / week.id / "multihead.py").rename(mine / "multihead.py")  # in its own week's folder
    report = grading.check(week, assignments / week.id)
    assert report.carried[0].own
    assert report.carried[0].path == mine / "multihead.py"
    failed = [t for t in report.tests if not t.passed]
    assert failed
    assert all(t.blame == "02-multihead" for t in failed)
    provided = grading.check(week, assignments / week.id, provided=True)
    assert provided.passed == len(provided.tests)


def test_student_edition_course_yml_keeps_uses(course, tmp_path):
    from autograder import release

    release.student_edition(course, tmp_path / "edition", provide=[course.week("02")])
    data = yaml.safe_load((tmp_path / "edition" / "course.yml").read_text())
    assert {w["id"]: w.get("uses", []) for w in data["weeks"]}["05-bert"] == list(course.week("05").uses)
    assert (tmp_path / "edition" / "provided" / "02-multihead" / "multihead.py").is_file()
    assert not (tmp_path / "edition" / "provided" / "04-block").exists()
    edition = config.load(tmp_path / "edition")
    assert (
        edition.week("02").reference_file("multihead.py")
        == tmp_path / "edition" / "provided" / "02-multihead" / "multihead.py"
    )


# -- backward compatible: the old single-file form -------------------------------------------------


def _with_pasted_copies(week: config.Week, folder: Path) -> Path:
    """The week's reference in the old single-file form: the earlier weeks' code pasted in after its imports.

    As before weeks imported each other, the file carries its own copy of every earlier module it
    needs (their definitions come after the imports, so the week's code runs on the copies).
    """
    folder.mkdir(parents=True)
    pasted = "".join(
        f"\n\n# -- week {earlier.id}, pasted --\n"
        + (earlier.solution_dir / name).read_text().replace("from __future__ import annotations\n", "")
        for name, earlier in week.carried_files.items()
    )
    for path in week.solution_dir.iterdir():
        if not path.is_file():
            continue
        if path.name not in week.files:
            (folder / path.name).write_bytes(path.read_bytes())  # lab artefacts
            continue
        source = path.read_text()
        imports = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        lines = source.splitlines(keepends=True)
        end = max(n.end_lineno or n.lineno for n in imports)
        (folder / path.name).write_text("".join(lines[:end]) + pasted + "\n\n" + "".join(lines[end:]))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("week_id", ["04", "05", "06", "07", "08", "09", "10"])
def test_a_single_file_submission_with_its_own_copies_still_gets_full_marks(course, tmp_path, week_id):
    week = course.week(week_id)
    folder = _with_pasted_copies(week, tmp_path / "student")
    assert "pasted" in (folder / week.files[0]).read_text()
    report = grading.grade(week, folder)
    failed = [f"{t.name}: {t.output}" for t in report.tests if not t.passed]
    assert not failed
    assert report.score == pytest.approx(week.max_score)
