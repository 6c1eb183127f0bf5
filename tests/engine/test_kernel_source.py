"""What the grader cuts out of a student's Triton file to compile it where none of their code runs."""

from __future__ import annotations

import textwrap

import pytest

from autograder.kernel_source import kernels_only

STUDENT = """
from __future__ import annotations
import os
import triton
import triton.language as tl
from triton import language as lang

os.system("echo owned")
BLOCK = 64
SCALE: tl.constexpr = tl.constexpr(0.5)
COMPUTED = os.getpid()

def helper():
    return os.system("echo owned")

@triton.autotune(configs=[triton.Config({"BLOCK": 16})], key=["n"])
@triton.jit
def kernel(X, n, BLOCK: tl.constexpr, mode: print("owned") = 1):
    x = tl.load(X + tl.arange(0, BLOCK))

@triton.jit
def with_computed_default(X, n=os.getpid()):
    pass

@(print("owned") or triton.jit)
def odd_decorator(X):
    pass

@triton.jit(do_not_specialize=["n"])
def options(X, n):
    pass
"""


def test_only_kernels_imports_and_literal_constants_are_kept():
    kept = kernels_only(textwrap.dedent(STUDENT))
    assert "owned" not in kept
    assert "os" not in kept.replace("options", "")
    assert "def kernel(X, n, BLOCK: tl.constexpr, mode=1)" in kept  # the annotation that ran code is gone
    assert "autotune" not in kept  # the launch recorded the configuration autotune picked
    assert "@triton.jit(do_not_specialize=['n'])" in kept
    assert "BLOCK = 64" in kept
    assert "SCALE: tl.constexpr = tl.constexpr(0.5)" in kept
    for gone in ("COMPUTED", "helper", "with_computed_default", "odd_decorator"):
        assert gone not in kept
    assert kept.startswith("from __future__ import annotations\nimport triton\nimport triton.language as tl\n")
    assert "from triton import language as lang" in kept
    compile(kept, "kernels.py", "exec")


def test_a_file_that_does_not_parse_raises():
    with pytest.raises(SyntaxError):
        kernels_only("def (:")
