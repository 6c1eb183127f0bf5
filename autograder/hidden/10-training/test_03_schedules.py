"""Hidden tests for week 10, learning-rate schedules (handout section 3).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import (
    assert_close,
)
from autograder.testing import (
    fails,
    number,
)

# -- learning-rate schedules -------------------------------------------------------------------

# (warmup_steps, total_steps, max_lr, min_lr)
COSINE_CASES = {
    "warmup10-total100": (10, 100, 3e-3, 0.0),
    "warmup7-total50-min_lr": (7, 50, 1e-3, 1e-4),
    "warmup0-total30-min_lr": (0, 30, 6e-4, 6e-5),
    "warmup10-total10-min_lr": (10, 10, 1e-3, 1e-4),  # no decay: max_lr at step 10, min_lr after (max(1, 0))
}


def cosine_steps(warmup: int, total: int) -> list[int]:
    middle = (warmup + total) // 2
    steps = {0, 1, 2, warmup - 1, warmup, warmup + 1, middle, middle + 3, total - 1, total, total + 1, total + 20}
    return sorted(s for s in steps if s >= 0)


def cosine_variant(step: int, warmup: int, total: int, max_lr: float, min_lr: float, variant: str) -> float:
    if variant == "warmup_off_by_one" and step < warmup:
        return max_lr * (step + 1) / warmup
    if variant == "no_warmup":
        warmup = 0
    if step < warmup:
        return max_lr * step / warmup
    if variant == "no_min_lr":
        min_lr = 0.0
    span = total if variant == "period_total" else max(1, total - warmup)
    progress = min((step - warmup) / span, 1.0) if variant != "full_period" else (step - warmup) / span
    if variant != "full_period" and step > total:
        return min_lr
    turn = 2.0 if variant == "full_period" else 1.0
    return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * turn * progress))


@pytest.mark.parametrize("case", list(COSINE_CASES))
def test_cosine_with_warmup(student, reference, case):
    warmup, total, max_lr, min_lr = COSINE_CASES[case]
    steps = cosine_steps(warmup, total)
    args = (warmup, total, max_lr, min_lr)
    got = [number(student.cosine_with_warmup(step, *args), name=f"cosine_with_warmup({step}, ...)") for step in steps]
    expected = [reference.cosine_with_warmup(step, *args) for step in steps]
    variants = {
        "the warm-up is one step ahead: max_lr * step / warmup_steps (0 at step 0)": "warmup_off_by_one",
        "min_lr is ignored: decay to min_lr, not to 0": "no_min_lr",
        "the cosine spans total_steps; it should span total_steps - warmup_steps, after the warm-up": "period_total",
        "cos(2 pi progress): half a period is enough (0.5 * (1 + cos(pi * progress)))": "full_period",
        "no warm-up": "no_warmup",
    }
    assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor(expected, dtype=torch.float64),
        name=f"cosine_with_warmup(step, warmup_steps={warmup}, total_steps={total}, max_lr={max_lr:g}, "
        f"min_lr={min_lr:g}) at steps {steps}",
        mistakes={
            text: torch.tensor([cosine_variant(s, *args, variant) for s in steps], dtype=torch.float64)
            for text, variant in variants.items()
        },
        hint="0 at step 0, max_lr at warmup_steps, min_lr at total_steps and after",
    )


# (d_model, warmup_steps)
INVERSE_SQRT_CASES = {"d512-warmup4000": (512, 4000), "d64-warmup7": (64, 7)}


@pytest.mark.parametrize("case", list(INVERSE_SQRT_CASES))
def test_inverse_sqrt(student, reference, case):
    d_model, warmup = INVERSE_SQRT_CASES[case]
    steps = sorted({0, 1, 2, warmup // 2, warmup - 1, warmup, warmup + 1, 3 * warmup, 25 * warmup})
    got = [number(student.inverse_sqrt(s, d_model, warmup), name=f"inverse_sqrt({s}, ...)") for s in steps]
    expected = torch.tensor([reference.inverse_sqrt(s, d_model, warmup) for s in steps], dtype=torch.float64)
    assert_close(
        torch.tensor(got, dtype=torch.float64),
        expected,
        name=f"inverse_sqrt(step, d_model={d_model}, warmup_steps={warmup}) at steps {steps}",
        mistakes={
            "missing the factor d_model ** -0.5": expected * math.sqrt(d_model),
            "the warm-up term uses warmup_steps ** -0.5 instead of ** -1.5": torch.tensor(
                [0.0 if s == 0 else min(s**-0.5, s * warmup**-0.5) / math.sqrt(d_model) for s in steps],
                dtype=torch.float64,
            ),
        },
        hint="d_model ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5), and 0.0 at step 0",
    )


SCHEDULE_CALLS = [
    ("cosine_with_warmup", (0, 10, 100, 3e-3, 3e-4)),
    ("cosine_with_warmup", (40, 10, 100, 3e-3, 3e-4)),
    ("cosine_with_warmup", (0, 0, 100, 3e-3, 3e-4)),
    ("cosine_with_warmup", (150, 10, 100, 3e-3, 3e-4)),
    ("inverse_sqrt", (0, 512, 4000)),
    ("inverse_sqrt", (123, 512, 4000)),
]


def test_schedules_return_floats(student):
    """Both schedules return Python floats (the handout's ``-> float``), 0.0 included, never tensors."""
    for name, args in SCHEDULE_CALLS:
        value = getattr(student, name)(*args)
        if type(value) is not float:
            shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else repr(value)
            fails(
                f"{name}({', '.join(f'{a:g}' for a in args)}) returned {type(value).__name__} ({shown:.60}); "
                "a schedule returns a Python float: use math.cos and math.sqrt on numbers, and 0.0 (not 0) at step 0"
            )
