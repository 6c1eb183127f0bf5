"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import os

import pytest
import torch

from autograder import config, sandbox
from tests.helpers import REPO

if not torch.cuda.is_available():
    # Week 09's Triton kernels run in Triton's interpreter on a CPU. It must be chosen before anything imports
    # triton, and `transformers` may import it while the week tests load: set it before any test module.
    os.environ.setdefault("TRITON_INTERPRET", "1")


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
