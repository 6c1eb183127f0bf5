"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import pytest

from autograder import config, sandbox
from tests.helpers import REPO


@pytest.fixture(scope="session")
def course() -> config.Course:
    return config.load(REPO)


@pytest.fixture(scope="session")
def week01(course: config.Course) -> config.Week:
    return course.week("01")


@pytest.fixture(scope="session")
def sandboxed() -> bool:
    """True when grading runs inside bubblewrap (root with bwrap installed, as in CI)."""
    return sandbox.choose().kind == "bwrap"
