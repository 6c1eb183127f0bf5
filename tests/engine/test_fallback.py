"""Without bubblewrap (a student's laptop, COURSE_SANDBOX=none) the process boundary and limits still hold."""

from __future__ import annotations

import textwrap
import warnings

import pytest

from autograder import grading
from tests.helpers import make_submission

pytestmark = pytest.mark.slow

BROKEN = """
    import os

    def padding_mask(lengths, seq_len):
        os._exit(0)

    def scaled_dot_product_attention(q, k, v, mask=None):
        while True:
            pass
"""


def test_limits_hold_without_the_sandbox(tmp_path, week01, monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "none")
    submission = make_submission(tmp_path / "sub", week01, textwrap.dedent(BROKEN))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = grading.grade(week01, submission)
    assert any("without a file-system sandbox" in str(w.message) for w in caught)
    assert "no file-system sandbox" in report.output_text()
    padding = [t for t in report.tests if t.name.startswith("test_padding_mask")]
    assert padding
    assert all(not t.passed and "died" in t.output for t in padding)
    attention = [t for t in report.tests if t.name.startswith("test_attention")]
    assert all(not t.passed for t in attention)
    assert any("timed out after 5 s in scaled_dot_product_attention" in t.output for t in attention)
    # The op checks also fail: the file calls os._exit, which the grader's audit cannot vouch for.
    op_checks = ("test_softmax_does_not_call_builtin",)
    others = [t for t in report.tests if not t.name.startswith(("test_attention", "test_padding_mask", *op_checks))]
    assert others
    assert all(t.passed for t in others)
