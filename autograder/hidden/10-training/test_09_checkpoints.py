"""Hidden tests for week 10, the forbidden built-ins and checkpoints on disk (handout section 9).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import torch

from autograder import (
    assert_close,
    assert_no_forbidden_ops,
    expect_sequence,
    randn,
)
from autograder.testing import (
    LOOSE,
    build_gpt,
    fails,
    token_ids,
)
from autograder.testing import TRAINING_CONFIG as CONFIG

# -- the forbidden built-ins ----------------------------------------------------------------------------------


def test_uses_no_builtin(student, reference, forbidden):
    ref, mine = build_gpt(student, reference, torch.float32, seed=190)
    mine.set_gradient_checkpointing(True)
    ids = token_ids(2, 11, CONFIG["vocab_size"], seed=191)
    grad_output = randn(2, 11, CONFIG["vocab_size"], seed=192)
    result, _ = mine.vjp(ids, grad_outputs=grad_output)  # the backward pass recomputes every block
    what = "GPT with set_gradient_checkpointing(True), forward and backward"
    assert_no_forbidden_ops(
        student.last_ops,
        forbidden,
        name=what,
        hint="checkpoint(block, x, mask, use_reentrant=False) around each block; no built-in gelu, LayerNorm, "
        "dropout or fused attention",
    )
    assert_close(result, ref(ids).detach(), name=f"{what}: the logits, float32", **LOOSE)


# -- checkpoints ----------------------------------------------------------------------------------------------


def test_checkpoint_round_trip(student, reference):
    ref, mine = build_gpt(student, reference, torch.float32, seed=200)
    vocab = "".join(chr(ord("!") + i) for i in range(CONFIG["vocab_size"]))
    student.save_checkpoint("checkpoint_test.pt", mine, None, 17, CONFIG, vocab)
    result = expect_sequence(student.load_checkpoint("checkpoint_test.pt"), 2, name="load_checkpoint(path)")
    loaded, state = result
    if not isinstance(state, dict):
        fails(f"load_checkpoint returned {type(state).__name__} as its second item, expected the checkpoint dict")
    for key, want in (("step", 17), ("vocab", vocab), ("config", CONFIG)):
        if state.get(key) != want:
            fails(
                f"the checkpoint's {key!r} is {state.get(key)!r:.120}, expected {want!r:.120} (save_checkpoint's arguments)"
            )
    ids = token_ids(2, 11, CONFIG["vocab_size"], seed=201)
    assert_close(
        loaded(ids),
        ref(ids).detach(),
        name="the logits of the model load_checkpoint rebuilt",
        hint="GPT(**checkpoint['config']), load_state_dict(checkpoint['model']), eval()",
        **LOOSE,
    )
