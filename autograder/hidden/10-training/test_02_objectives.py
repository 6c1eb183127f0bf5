"""Hidden tests for week 10, objectives: the causal LM loss (handout section 2).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import (
    assert_close,
    randn,
)
from autograder.testing import (
    DTYPE_IDS,
    DTYPE_NAMES,
    DTYPES,
    causal_mistakes,
    right_padded,
    token_ids,
)

# -- objectives ---------------------------------------------------------------------------------


def loss_inputs(dtype: torch.dtype, seed: int, batch: int = 4, length: int = 13, vocab: int = 37):
    logits = randn(batch, length, vocab, dtype=dtype, seed=seed, scale=3.0)
    ids = token_ids(batch, length, vocab, seed=seed + 1)
    return logits, ids


CAUSAL_CASES = {
    "no-mask": (None, 11),
    "right-padded": ([13, 8, 3, 1], 13),
    "left-padded": ([13, 9, 4, 2], 13),
    "right-padded-bool-mask": ([12, 7, 13, 2], 13),  # attention_mask of True / False ("1 (or True)")
}


def causal_mask_for(case: str) -> torch.Tensor | None:
    lengths, length = CAUSAL_CASES[case]
    if lengths is None:
        return None
    mask = right_padded(lengths, length)
    if case.endswith("bool-mask"):
        return mask.bool()
    return mask.flip(1) if case == "left-padded" else mask


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(CAUSAL_CASES))
def test_causal_lm_loss(student, reference, case, dtype):
    _, length = CAUSAL_CASES[case]
    logits, ids = loss_inputs(dtype, seed=10, length=length)
    mask = causal_mask_for(case)
    assert_close(
        student.causal_lm_loss(logits, ids, mask),
        reference.causal_lm_loss(logits, ids, mask),
        name=f"causal_lm_loss on (4, {length}, 37) logits, {case}, {DTYPE_NAMES[dtype]}",
        mistakes=causal_mistakes(logits, ids, mask),
        hint="logits[:, :-1] against input_ids[:, 1:]; ignore targets whose mask is 0; mean over counted targets",
    )


def test_causal_lm_loss_without_targets(student):
    logits, ids = loss_inputs(torch.float64, seed=20, batch=3, length=6)
    mask = right_padded([1, 1, 0], 6)  # no row has a real token after its first position
    assert_close(
        student.causal_lm_loss(logits, ids, mask),
        torch.tensor(0.0, dtype=torch.float64),
        name="causal_lm_loss when no target is a real token",
        mistakes={"0 / 0: divide by the number of counted targets only when it is not zero": torch.tensor(math.nan)},
        hint="with no counted target the loss is 0, not NaN (clamp the count to at least 1)",
    )


def test_causal_lm_loss_gradient(student, reference):
    logits, ids = loss_inputs(torch.float64, seed=30)
    mask = causal_mask_for("right-padded")
    logits.requires_grad_()
    _, grads = student.causal_lm_loss.vjp(logits, ids, mask, grad_outputs=torch.tensor(1.0, dtype=torch.float64))
    (expected,) = torch.autograd.grad(reference.causal_lm_loss(logits, ids, mask), [logits])
    assert_close(
        grads[0],
        expected,
        name="gradient of causal_lm_loss with respect to the logits (right-padded batch)",
        hint="(softmax - one_hot(target)) / N at counted positions, 0 at the last position and at padded targets",
    )
