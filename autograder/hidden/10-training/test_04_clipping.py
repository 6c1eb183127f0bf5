"""Hidden tests for week 10, gradient clipping by the global norm (handout section 4).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import pytest
import torch

from autograder import (
    assert_close,
    assert_no_forbidden_ops,
)
from autograder.testing import (
    DTYPE_NAMES,
    NET_GRADS,
    fails,
    local_params,
    number,
    remote_net,
    student_grads,
)

# -- gradient clipping -----------------------------------------------------------------------------


# (max_norm, grad_scale, dtype): the global norm is about 2.3 * grad_scale here
CLIP_CASES = {
    "clipped-fp64": (0.5, 1.0, torch.float64),
    "clipped-fp32": (3.0, 10.0, torch.float32),
    "not-clipped-fp64": (1e3, 1.0, torch.float64),
}


@pytest.mark.parametrize("case", list(CLIP_CASES))
def test_clip_grad_norm(student, reference, case):
    max_norm, grad_scale, dtype = CLIP_CASES[case]
    _, holder = remote_net(student, dtype, seed=40, grad_scale=grad_scale)
    expected_names = {name: torch.zeros(0) for name in NET_GRADS}
    before = student_grads(student, holder, expected_names, name="the gradients before clipping")
    params = local_params(before)
    expected_total = reference.clip_grad_norm(params, max_norm)
    total = student.clip_grad_norm(holder, max_norm)
    what = f"clip_grad_norm(..., max_norm={max_norm:g}) of gradients with a global norm of {float(expected_total):.3g}"
    assert_close(
        torch.tensor(number(total, name=f"{what}: the returned norm"), dtype=torch.float64),
        expected_total.double(),
        name=f"{what}: the returned norm",
        mistakes={
            "the norm after clipping was returned; return the norm before": torch.tensor(
                min(max_norm, float(expected_total)), dtype=torch.float64
            )
        },
        hint="return sqrt(sum of every gradient's squared entries), measured before clipping",
    )
    after = student_grads(student, holder, expected_names, name=f"{what}: the gradients afterwards")
    norms = {name: float(before[name].double().norm()) for name in NET_GRADS}
    for name, p in zip(NET_GRADS, params, strict=False):
        mistakes = {"the gradients were not changed: multiply each one in place (grad.mul_(coef))": before[name]}
        if norms[name] > max_norm:
            mistakes["each gradient clipped by its own norm; clip by the global norm of all of them"] = (
                before[name] * max_norm / norms[name]
            )
        if float(expected_total) <= max_norm:
            mistakes["scaled although the norm was below max_norm; only scale when coef < 1"] = (
                before[name] * max_norm / float(expected_total)
            )
        assert_close(
            after[name],
            p.grad,
            name=f"{what}: gradient of {name} afterwards, {DTYPE_NAMES[dtype]}",
            mistakes=mistakes,
            hint="coef = max_norm / (total + 1e-6); if coef < 1, multiply every gradient by coef in place",
        )


def test_clip_grad_norm_uses_no_builtin(student, reference):
    _, holder = remote_net(student, torch.float64, seed=45, grad_scale=1.0)
    before = student_grads(student, holder, {name: torch.zeros(0) for name in NET_GRADS}, name="gradients")
    params = local_params(before)
    expected = reference.clip_grad_norm(params, 0.1)
    total = student.clip_grad_norm(holder, 0.1)
    assert_no_forbidden_ops(
        student.last_ops,
        ["*clip_grad*", "*_foreach_norm*", "*_foreach_mul*", "*_get_total_norm*"],
        name="clip_grad_norm",
        hint="compute the norms with torch.linalg.vector_norm and scale with grad.mul_; "
        "torch.nn.utils.clip_grad_norm_ is what you are writing",
    )
    assert_close(
        torch.tensor(number(total, name="clip_grad_norm's result"), dtype=torch.float64),
        expected.double(),
        name="clip_grad_norm's returned norm",
    )


def test_clip_grad_norm_without_gradients(student):
    """No parameter has a gradient (a fresh module): the norm is 0 and nothing fails."""
    fresh = student.nn.ModuleList([student.nn.Linear(4, 3), student.nn.Linear(3, 2, bias=False)])
    total = number(student.clip_grad_norm(fresh, 1.0), name="clip_grad_norm of a module without gradients")
    if total != 0.0:
        fails(
            f"clip_grad_norm of a module whose parameters have no gradient returned {total!r}; expected 0 "
            "(skip parameters whose .grad is None; with none left the norm is 0)"
        )
