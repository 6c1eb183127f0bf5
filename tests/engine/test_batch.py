"""`course grade-all`: a class in parallel, one results.json per student, a gradebook, and re-runs that skip."""

from __future__ import annotations

import csv
import json

import pytest

from autograder import batch
from tests.helpers import make_submission

pytestmark = pytest.mark.slow


def test_grade_class_writes_results_and_skips_unchanged(tmp_path, week01):
    class_dir = tmp_path / "class"
    make_submission(class_dir / "ann", week01, None)
    make_submission(class_dir / "ben", week01, None, replace="def softmax(x, dim=-1)\n    return x\n")
    (class_dir / "cal").mkdir()  # handed in nothing
    (class_dir / ".hidden").mkdir()  # not a student
    gradebook = tmp_path / "out" / "gradebook.csv"

    first = batch.grade_class(week01, class_dir, gradebook, jobs=2)
    assert [o.name for o in first] == ["ann", "ben", "cal"]
    assert not any(o.cached for o in first)
    rows = {row["student"]: row for row in csv.DictReader(gradebook.open())}
    assert float(rows["ann"]["score"]) == week01.max_score
    assert float(rows["ben"]["score"]) == 0
    assert float(rows["cal"]["score"]) == 0
    ben = json.loads((gradebook.parent / "ben" / "results.json").read_text())
    assert "SyntaxError in attention.py line 1" in ben["tests"][0]["output"]
    cal = json.loads((gradebook.parent / "cal" / "results.json").read_text())
    assert "Missing from your submission: attention.py" in cal["output"]

    second = batch.grade_class(week01, class_dir, gradebook, jobs=2)
    assert all(o.cached for o in second)
    assert [o.report for o in second] == [o.report for o in first]

    (class_dir / "ben" / "attention.py").write_text((week01.solution_dir / "attention.py").read_text())
    third = {o.name: o for o in batch.grade_class(week01, class_dir, gradebook, jobs=2)}
    assert not third["ben"].cached
    assert third["ann"].cached
    assert third["cal"].cached
    assert third["ben"].report.score == week01.max_score


def test_a_deleted_or_changed_lab_file_is_regraded(tmp_path):
    """The cache key covers every handed-in file, not only the code: deleting a lab's log must not keep its points."""
    from autograder import config
    from tests.helpers import REPO

    week = config.load(REPO).week("10")
    folder = tmp_path / "class" / "ann"
    folder.mkdir(parents=True)
    for path in week.solution_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    grader = batch.grader_fingerprint(week)
    before = batch.submission_fingerprint(week, folder, grader)
    assert batch.submission_fingerprint(week, folder, grader) == before
    (folder / "train_log.csv").unlink()
    deleted = batch.submission_fingerprint(week, folder, grader)
    assert deleted != before
    (folder / "report.md").write_text("a different report\n")
    assert batch.submission_fingerprint(week, folder, grader) not in (before, deleted)
    (folder / "notes.txt").write_text("an extra file the lab might read\n")
    assert batch.submission_fingerprint(week, folder, grader) != deleted
