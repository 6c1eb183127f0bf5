"""`course validate` must notice a grader that cannot fail and tests that are worth nothing."""

from __future__ import annotations

import shutil

import pytest
import yaml

from autograder import config, validate
from tests.helpers import REPO

pytestmark = pytest.mark.slow


@pytest.fixture
def broken_course(tmp_path):
    """A copy of week 01 with a mutant the tests cannot catch and a hidden test without points."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("solutions", "assignments", "weeks", "autograder/hidden", "autograder/public"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=ignore)
    mutants = tmp_path / "autograder" / "mutants" / "01-attention"
    mutants.mkdir(parents=True)
    shutil.copy(REPO / "autograder" / "mutants" / "01-attention" / "no_scale.py", mutants)
    (mutants / "harmless.py").write_text('"""Changes nothing observable."""\n\nUNUSED = 1\n')
    (mutants / "stale.py").write_text('"""Matches nothing in the reference."""\n\nREPLACE = [("no such line", "x")]\n')
    (mutants / "swapped_softmax_dim.py").write_text(
        '"""Substitution mutant: the softmax over the query axis."""\n\n'
        'REPLACE = [("weights = softmax(scores, dim=-1)", "weights = softmax(scores, dim=-2)")]\n'
    )
    data = yaml.safe_load((REPO / "course.yml").read_text())
    (week01,) = (week for week in data["weeks"] if week["id"] == "01-attention")
    del week01["tests"]["test_padding_mask"]
    (tmp_path / "course.yml").write_text(yaml.safe_dump(data))
    return config.load(tmp_path)


def test_validate_reports_uncaught_mutant_and_pointless_test(broken_course):
    verdicts = {(v.kind, v.name): v for v in validate.validate(broken_course, [broken_course.week("01")], jobs=2)}
    assert verdicts[("mutant", "no_scale")].ok
    harmless = verdicts[("mutant", "harmless")]
    assert not harmless.ok
    assert "NOT CAUGHT" in harmless.detail
    stale = verdicts[("mutant", "stale")]
    assert not stale.ok
    assert "'no such line' occurs 0 times in attention.py" in stale.detail
    assert verdicts[("mutant", "swapped_softmax_dim")].ok  # applied, then caught
    reference = verdicts[("reference", "reference")]
    assert not reference.ok
    assert "test_padding_mask" in reference.detail
    assert verdicts[("skeleton", "skeleton")].ok
    assert verdicts[("public", "reference (public tests)")].ok


def test_substitution_mutant_must_match_exactly_once(tmp_path):
    week = config.load(REPO).week("01")
    mutant = tmp_path / "twice.py"
    mutant.write_text('REPLACE = [("return", "return")]\n')  # every function returns
    with pytest.raises(ValueError, match="occurs .* times in attention.py, not once"):
        validate.build_mutant(week, mutant, tmp_path / "out")
    mutant.write_text("REPLACE = []\n")
    with pytest.raises(ValueError, match="non-empty list"):
        validate.build_mutant(week, mutant, tmp_path / "out2")
