"""Frank: tries every trick that beats notebook graders. None of them should work here."""

import inspect
import os
import sys

import torch
import torch.testing

# 1. Make every comparison succeed (works when tests run in the student's process).
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)


class AlwaysEqual:
    """Compares equal to anything, has any shape you ask for."""

    def __eq__(self, other):
        return True

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


def _steal():
    """Look for the reference solution, hidden tests and results files; copy what is found."""
    found = {}
    for path in ("../../solutions/01-attention/attention.py", "/autograder/source", "/work/main/solutions",
                 os.path.expanduser("~"), "../../autograder/hidden/01-attention/test_attention.py"):
        try:
            found[path] = open(path).read() if os.path.isfile(path) else os.listdir(path)
        except OSError:
            pass
    # 2. Write our own results file wherever the grader might read it.
    for target in ("results.json", "../results.json", "/autograder/results/results.json", "../../build/gradebook.csv"):
        try:
            with open(target, "w") as handle:
                handle.write('{"score": 100, "max_score": 21}')
        except OSError:
            pass
    return found


STOLEN = _steal()


def softmax(x, dim=-1):
    # 3. Look up the caller's stack for an expected value.
    for frame_info in inspect.stack():
        for name in ("expected", "exp_weights", "want"):
            if name in frame_info.frame.f_locals:
                return frame_info.frame.f_locals[name]
    return AlwaysEqual()


def causal_mask(seq_len, device=None):
    sys.exit(0)  # 4. "Pass" by ending the test run early.


def padding_mask(lengths, seq_len):
    raise SystemExit("all tests passed")


def scaled_dot_product_attention(q, k, v, mask=None):
    return AlwaysEqual(), AlwaysEqual()
