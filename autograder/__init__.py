"""The course's grading engine and `course` command.

Test authors need only this module's public names:

* fixtures ``student`` (the student's module, running in a sandboxed worker) and
  ``reference`` (the reference solution), provided by the grading plugin;
* checks ``assert_close``, ``assert_equal``, ``expect_tensor``, ``expect_sequence``
  and ``assert_no_forbidden_ops``, which fail with messages a student can act on;
* ``reference_grads``, autograd's gradients for the reference side (without its slow first call);
* ``randn``, seeded inputs (``autograder.inputs``).

The checks are imported lazily so that ``course --help`` and the start of a
grade (which launches the worker first) do not wait for torch.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckFailed",
    "assert_close",
    "assert_equal",
    "assert_global_rng_untouched",
    "assert_no_forbidden_ops",
    "assert_no_tensor_with_dims",
    "expect_sequence",
    "expect_tensor",
    "randn",
    "reference_grads",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "randn":
        from autograder import inputs

        return inputs.randn
    if name in __all__:
        from autograder import checks

        return getattr(checks, name)
    raise AttributeError(f"module 'autograder' has no attribute {name!r}")
