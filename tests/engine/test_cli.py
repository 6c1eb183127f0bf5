"""The `course` command as users run it: exit codes, messages, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, make_submission

COURSE = [sys.executable, "-m", "autograder.cli"]


def course(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([*COURSE, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=300)


def test_help_lists_every_command():
    result = course("--help")
    assert result.returncode == 0
    for command in ("check", "grade", "grade-all", "release", "validate"):
        assert command in result.stdout


def test_unknown_week_is_a_clear_error(tmp_path):
    result = course("grade", "99", str(tmp_path), "--out", str(tmp_path / "r.json"))
    assert result.returncode == 2
    assert "unknown week '99'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_missing_submission_folder_is_a_clear_error(tmp_path):
    result = course("grade", "01", str(tmp_path / "nope"), "--out", str(tmp_path / "r.json"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_bad_jobs_is_refused(tmp_path):
    result = course("grade-all", "01", str(tmp_path), "--jobs", "0")
    assert result.returncode == 2


def test_malformed_course_yml_names_the_key(tmp_path):
    (tmp_path / "course.yml").write_text(
        "title: T\nweeks:\n  - id: 01-x\n    title: X\n    files: [x.py]\n    tests: {t: two}\n"
    )
    result = course("validate", env={"COURSE_ROOT": str(tmp_path)})
    assert result.returncode == 2
    assert "weeks[0].tests.t: expected a number of points, got 'two'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_grade_writes_gradescope_json_and_exits_zero_for_a_failing_submission(tmp_path, week01):
    submission = make_submission(tmp_path / "sub", week01, "def causal_mask(seq_len, device=None):\n    return None\n")
    out = tmp_path / "out" / "results.json"
    result = course("grade", "01", str(submission), "--out", str(out))
    assert result.returncode == 0, result.stderr
    results = json.loads(out.read_text())
    assert 0 < results["score"] < results["max_score"] == week01.max_score
    failing = [t for t in results["tests"] if t["status"] == "failed"]
    assert failing
    assert all(t["name"].startswith("test_causal_mask") for t in failing)
    assert "expected a torch.Tensor, got NoneType" in failing[0]["output"]
    assert "Score:" in result.stdout


@pytest.mark.slow
def test_check_runs_public_tests_with_hints():
    reference = course("check", "01", str(REPO / "solutions" / "01-attention"))
    assert reference.returncode == 0, reference.stderr
    assert "5/5 public checks pass" in reference.stdout
    skeleton = course("check", "01")
    assert skeleton.returncode == 0, skeleton.stderr
    assert "0/5 public checks pass" in skeleton.stdout
    assert "not implemented yet" in skeleton.stdout


def test_release_check_passes_on_the_repository():
    result = course("release", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "in sync" in result.stdout


def test_tables_print_bracketed_case_names_and_feedback_literally():
    """Parametrized ids like [fp32-mha] and student text like [red]x[/red] are data, not rich markup."""
    from autograder import cli_grade, terminal
    from autograder.results import GradeReport, TestResult

    report = GradeReport("03", [TestResult("test_apply_rope[fp32]", 0, 1, False, "[bold]x[/bold]")], 0.0, "none")
    with terminal.console.capture() as captured:
        cli_grade._print_tests(report, show_output=True)
    text = captured.get()
    assert "test_apply_rope[fp32]" in text
    assert "[bold]x[/bold]" in text


def test_quick_exit_still_cleans_up_and_writes_everything(tmp_path):
    """`course` ends with os._exit after running the exit handlers: the zygote's temp folder goes, output stays."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = tmp_path / "results.json"
    result = course(
        "grade", "01", str(REPO / "solutions" / "01-attention"), "--out", str(out), env={"TMPDIR": str(temp)}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["score"] == 24.5
    assert "24.5 / 24.5" in result.stdout  # printed before the quick exit, not lost in a buffer
    assert not list(temp.glob("course-zygote-*")), "the exit handlers did not run"
