"""`course new-week`: a scaffolded week validates (reference full marks, skeleton zero, mutant caught) and is in sync.

The scaffold runs in a copy of the course's data (course.yml, README, handouts, solutions, tests,
mutants, assignments); the engine is the installed one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder import cli, config, scaffold
from tests.engine.test_readme import ROW
from tests.helpers import REPO

COPIED = [
    "course.yml",
    "README.md",
    "weeks",
    "solutions",
    "assignments",
    *(f"autograder/{n}" for n in ("hidden", "public", "mutants")),
]


def course_copy(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


def course_command(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != config.ROOT_ENV}
    # The installed command, as an instructor runs it (``python -c`` would import the copy's autograder/ folder).
    command = shutil.which("course", path=str(Path(sys.executable).parent)) or "course"
    return subprocess.run([command, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory) -> Path:
    root = course_copy(tmp_path_factory.mktemp("course"))
    result = course_command(root, "new-week", "12-retrieval", "--title", "Retrieval: nearest neighbours")
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def test_new_week_writes_every_place_a_week_needs(scaffolded):
    week = config.load(scaffolded).week("12")
    assert week.id == "12-retrieval"
    assert week.title == "Retrieval: nearest neighbours"
    assert week.files == ("retrieval.py",)
    assert week.tests == {"test_retrieval_scale": 1.0}
    assert week.handout.is_file()
    assert "# BEGIN SOLUTION" in (week.solution_dir / "retrieval.py").read_text()
    assert (week.hidden_dir / "test_retrieval.py").is_file()
    assert (week.public_dir / "test_retrieval_public.py").is_file()
    assert [p.name for p in week.mutants_dir.glob("*.py")] == ["adds_factor.py"]
    generated = sorted(p.name for p in week.assignment_dir.iterdir())
    assert generated == ["retrieval.ipynb", "retrieval.py", "test_retrieval_public.py"]
    assert "NotImplementedError" in (week.assignment_dir / "retrieval.py").read_text()


def test_course_yml_keeps_its_text_and_gains_the_block(scaffolded):
    before = (REPO / "course.yml").read_text()
    after = (scaffolded / "course.yml").read_text()
    assert after.startswith(before.rstrip("\n") + "\n")  # comments and formatting untouched; the block at the end
    assert '  - id: 12-retrieval\n    title: "Retrieval: nearest neighbours"\n' in after


def test_readme_row_is_what_the_readme_test_expects(scaffolded):
    rows = {match["slug"]: match for match in ROW.finditer((scaffolded / "README.md").read_text())}
    assert sorted(rows) == sorted(week.id for week in config.load(scaffolded).weeks)
    row = rows["12-retrieval"]
    assert (row["tests"], row["cases"], row["points"], row["caught"], row["mutants"]) == ("1", "1", "1", "1", "1")


def test_scaffolded_week_validates_and_is_in_sync(scaffolded):
    validated = course_command(scaffolded, "validate", "12", "--jobs", "1")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "1/1 mutants caught; 0 problem(s)" in validated.stdout
    synced = course_command(scaffolded, "release", "--check")
    assert synced.returncode == 0, synced.stdout + synced.stderr


@pytest.mark.parametrize(
    ("week_id", "options", "message"),
    [
        ("01-attention", {}, "already exists"),
        ("12-attention", {}, "slug 'attention' is taken"),
        ("05-anything", {}, "number 05 is taken"),
        ("12-Retrieval", {}, "expected a week id"),
        ("12-", {}, "expected a week id"),
        ("12-retrieval", {"module": "attention"}, "attention.py is already a file of week 01-attention"),
        ("12-retrieval", {"module": "json"}, "would shadow"),
        ("12-retrieval", {"module": "my-module"}, "lower-case Python module name"),
    ],
)
def test_refuses_what_is_taken_or_malformed(week_id, options, message):
    with pytest.raises(scaffold.ScaffoldError, match=message):
        scaffold.plan(config.load(REPO), week_id, **options)


def test_refuses_before_writing_anything(tmp_path, monkeypatch, capsys):
    root = course_copy(tmp_path)
    (root / "weeks" / "12-retrieval").mkdir()
    before = (root / "course.yml").read_text()
    monkeypatch.delenv(config.ROOT_ENV, raising=False)
    monkeypatch.chdir(root)
    assert cli.main(["new-week", "12-retrieval"]) == 2
    assert "already there: weeks/12-retrieval/" in capsys.readouterr().err
    assert (root / "course.yml").read_text() == before
    assert not (root / "solutions" / "12-retrieval").exists()


def test_a_week_between_others_goes_in_number_order():
    text = (
        "title: T\n"
        "weeks:\n"
        "  - id: 01-a\n    title: A\n    files: [a.py]\n    tests: {test_a: 1}\n"
        "  # the last week\n"
        "  - id: 03-c\n    title: C\n    files: [c.py]\n    tests: {test_c: 1}\n"
    )
    new = scaffold.NewWeek("02-b", "B", "b")
    changed = scaffold.with_course_block(text, new)
    assert [w.id for w in config.parse(yaml.safe_load(changed), REPO).weeks] == ["01-a", "02-b", "03-c"]
    assert changed.index("02-b") < changed.index("# the last week")
    readme = (
        "| [01 a](weeks/01-a/README.md) | A | 1 (1 cases, 1 points) | 1/1 |\n| [03 c](weeks/03-c/README.md) | C | x |\n"
    )
    rows = scaffold.with_readme_row(readme, new).splitlines()
    assert [row.split("]")[0] for row in rows] == ["| [01 a", "| [02 b", "| [03 c"]
