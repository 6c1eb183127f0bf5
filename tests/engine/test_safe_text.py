"""Feedback from student code reaches results.json and the terminal without escape sequences."""

from __future__ import annotations

import json

import pytest

from autograder import grading
from autograder.safe_text import clean
from tests.helpers import make_submission

ATTACK = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x1b[2J\x1b[31m\x1b]52;c;cm0gLXJmIH4=\x07\u202eevil\x00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text\nwith\ttabs", "plain text\nwith\ttabs"),
        ("\x1b[31mred\x1b[0m", "\ufffdred\ufffd"),
        ("a\x1b]0;title\x07b", "a\ufffdb"),  # window title (OSC ... BEL)
        ("a\x1b]8;;url\x1b\\b", "a\ufffdb"),  # hyperlink (OSC ... ST)
        ("over\rwrite", "over\ufffdwrite"),
        ("bidi \u202eevil\u202c", "bidi \ufffdevil\ufffd"),
        ("\x9b2J8-bit CSI", "\ufffd8-bit CSI"),
        ("windows\r\nline", "windows\nline"),
    ],
)
def test_clean_removes_control_sequences(text, expected):
    assert clean(text) == expected


@pytest.mark.slow
def test_escape_sequences_from_student_code_never_reach_results(tmp_path, week01):
    code = f"import sys\nprint({ATTACK!r})\ndef softmax(x, dim=-1):\n    raise ValueError({ATTACK!r})\n"
    submission = make_submission(tmp_path / "eve", week01, code)
    results = grading.grade(week01, submission).to_gradescope()
    texts = [results["output"], *(test["output"] for test in results["tests"])]
    assert any("click" in text for text in texts)  # the text itself is kept
    assert "click" in results["output"]  # printed output too
    for text in texts:
        assert clean(text) == text, text
    json.dumps(results)
