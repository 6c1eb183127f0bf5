"""Hidden tests for week 10, gradient checkpointing (handout section 7).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import torch

from autograder import (
    assert_close,
    randn,
)
from autograder.testing import TRAINING_CONFIG as CONFIG
from autograder.testing import TRAINING_LENGTH as LENGTH
from autograder.testing import TRAINING_LENGTHS as LENGTHS
from autograder.testing import (
    build_gpt,
    fails,
    right_padded,
    student_grads,
    token_ids,
)
from autograder.testing import parameter_grads as reference_grads

# -- gradient checkpointing --------------------------------------------------------------------------------


def test_checkpointing_same_gradients(student, reference):
    ref, mine = build_gpt(student, reference, torch.float64, seed=130)
    mine.set_gradient_checkpointing(True)
    ids, mask = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=131), right_padded(LENGTHS, LENGTH)
    grad_output = randn(3, LENGTH, CONFIG["vocab_size"], seed=132)
    logits, _ = mine.vjp(ids, attention_mask=mask, grad_outputs=grad_output)
    expected_logits = ref(ids, attention_mask=mask)
    what = "GPT with set_gradient_checkpointing(True), float64"
    assert_close(
        logits, expected_logits.detach(), name=f"{what}: the logits", hint="checkpointing changes memory, not values"
    )
    expected = reference_grads(ref, (expected_logits * grad_output).sum())
    grads = student_grads(student, mine, expected, name=what)
    for name, want in expected.items():
        assert_close(
            grads[name],
            want,
            name=f"{what}: gradient of {name}",
            mistakes={"no gradient reaches the blocks (run under no_grad or detached)": torch.zeros_like(want)},
            hint="checkpoint(block, x, mask, use_reentrant=False): the same gradients as without checkpointing",
        )


def test_checkpointing_in_train_mode(student, reference):
    """Dropout on (train mode, p = 0.1): the recomputed blocks must draw the same masks as the forward pass did.

    The student's process and the grader start from the same global RNG state, so the student's checkpointed
    model draws the very dropout masks of the reference run without checkpointing.
    """
    ref, mine = build_gpt(student, reference, torch.float64, seed=135)
    ref.train()
    mine.train()
    mine.set_gradient_checkpointing(True)
    ids, mask = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=136), right_padded(LENGTHS, LENGTH)
    grad_output = randn(3, LENGTH, CONFIG["vocab_size"], seed=137)
    state = torch.Generator().manual_seed(138).get_state()
    student.torch.random.set_rng_state(state)
    logits, _ = mine.vjp(ids, attention_mask=mask, grad_outputs=grad_output)
    saved = torch.random.get_rng_state()
    try:
        torch.random.set_rng_state(state)
        expected_logits = ref(ids, attention_mask=mask)
        expected = reference_grads(ref, (expected_logits * grad_output).sum())
    finally:
        torch.random.set_rng_state(saved)
    what = "GPT with set_gradient_checkpointing(True) in train mode (dropout 0.1), float64"
    assert_close(
        logits,
        expected_logits.detach(),
        name=f"{what}: the logits",
        hint="checkpointing changes memory, not values: week 06's forward with your run_blocks",
    )
    grads = student_grads(student, mine, expected, name=what)
    for name, want in expected.items():
        assert_close(
            grads[name],
            want,
            name=f"{what}: gradient of {name}",
            hint="keep checkpoint's default preserve_rng_state=True: the recomputed blocks must draw the same "
            "dropout masks as the forward pass",
        )


MEMORY_CONFIG = CONFIG | {"max_len": 40, "n_layers": 4, "d_ff": 64, "dropout": 0.0}


def test_checkpointing_saves_memory(student, reference):
    ref, mine = build_gpt(student, reference, torch.float32, seed=140, config=MEMORY_CONFIG)
    ids = token_ids(4, 40, CONFIG["vocab_size"], seed=141)
    # Measured by the engine (sandboxed/instruments.py), never by the student's own saved_activation_bytes.
    plain = mine.saved_tensor_bytes(ids)
    mine.set_gradient_checkpointing(True)
    checkpointed = mine.saved_tensor_bytes(ids)
    ref_plain = reference.saved_activation_bytes(ref, ids)
    ref.set_gradient_checkpointing(True)
    ref_checkpointed = reference.saved_activation_bytes(ref, ids)
    what = (
        f"a 4-layer GPT on a (4, 40) batch keeps {plain / 1024:.0f} KiB of activations for the backward pass without "
        f"checkpointing and {checkpointed / 1024:.0f} KiB with it (the reference: {ref_plain / 1024:.0f} and "
        f"{ref_checkpointed / 1024:.0f} KiB)"
    )
    if not plain > 0:
        fails(f"{what}: nothing is saved without checkpointing; is the model running with gradients?")
    if not checkpointed <= plain / 3:
        fails(
            f"{what}: checkpointing should keep only each block's input, a few times less. GPT.run_blocks (which "
            "week 06's GPT.forward calls) must call torch.utils.checkpoint.checkpoint(block, x, mask, "
            "use_reentrant=False) for each block when self.gradient_checkpointing is set"
        )
