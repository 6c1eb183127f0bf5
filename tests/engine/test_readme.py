"""The README's table of weeks says what course.yml and the mutant folders say."""

from __future__ import annotations

import re

import pytest

from autograder import config
from tests.helpers import REPO

ROW = re.compile(
    r"^\| \[(?P<id>\d\d) [^]]+\]\(weeks/(?P<slug>[^/]+)/README\.md\) \| .* \| (?P<tests>\d+) \((?P<cases>\d+) cases, "
    r"(?P<points>[\d.]+) points\) \| (?P<caught>\d+)/(?P<mutants>\d+) \|$",
    flags=re.M,
)


def rows() -> dict[str, re.Match[str]]:
    return {match["slug"]: match for match in ROW.finditer((REPO / "README.md").read_text())}


def test_every_week_has_a_row():
    assert sorted(rows()) == sorted(week.id for week in config.load(REPO).weeks)


@pytest.mark.parametrize("week_id", [week.id for week in config.load(REPO).weeks])
def test_row_matches_course_yml_and_mutants(week_id):
    week = config.load(REPO).week(week_id)
    row = rows()[week_id]
    assert int(row["tests"]) == len(week.tests), "hidden tests in course.yml"
    assert float(row["points"]) == pytest.approx(week.max_score), "points in course.yml"
    mutants = len(list(week.mutants_dir.glob("*.py")))
    assert int(row["mutants"]) == int(row["caught"]) == mutants, "mutants in autograder/mutants"
