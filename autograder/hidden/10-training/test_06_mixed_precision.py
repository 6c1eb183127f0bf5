"""Hidden tests for week 10, mixed precision: the loss scaler and forward_backward (handout section 6).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import (
    assert_close,
    expect_sequence,
    expect_tensor,
    randn,
)
from autograder.testing import (
    NET_GRADS,
    build_gpt,
    causal_mistakes,
    fails,
    number,
    relative_error,
    remote_net,
    right_padded,
    student_grads,
    token_ids,
)
from autograder.testing import TRAINING_CONFIG as CONFIG
from autograder.testing import TRAINING_LENGTH as LENGTH
from autograder.testing import TRAINING_LENGTHS as LENGTHS
from autograder.testing import parameter_grads as reference_grads

# -- mixed precision: the loss scaler -------------------------------------------------------------------

OVERFLOWS = [False, False, False, False, True, False, True, True, False, False, False, False, False, False, True]


def simulate_scaler(flags: list[bool], init: float, growth: float, backoff: float, interval: int, reset: bool = True):
    """``(loss_scale, growth_tracker)`` after each update, or without resetting the tracker on an overflow."""
    scale, tracker, history = init, 0, []
    for found_inf in flags:
        if found_inf:
            scale *= backoff
            tracker = 0 if reset else tracker
        else:
            tracker += 1
            if tracker == interval:
                scale *= growth
                tracker = 0
        history.append((scale, tracker))
    return history


def test_loss_scaler_update(student, reference):
    init, growth, backoff, interval = 2.0**10, 4.0, 0.25, 3
    scaler = student.DynamicLossScaler(init, growth, backoff, interval)
    mine = reference.DynamicLossScaler(init, growth, backoff, interval)
    scales, trackers, expected_scales, expected_trackers = [], [], [], []
    start = number(scaler.loss_scale.fetch(), name="DynamicLossScaler(...).loss_scale")
    if start != init:
        fails(f"DynamicLossScaler(init_scale={init:g}, ...).loss_scale is {start:g}; it should start at init_scale")
    for i, found_inf in enumerate(OVERFLOWS):
        scaler.update(found_inf)
        mine.update(found_inf)
        scales.append(number(scaler.loss_scale.fetch(), name=f"loss_scale after update number {i + 1}"))
        trackers.append(number(scaler.growth_tracker.fetch(), name=f"growth_tracker after update number {i + 1}"))
        expected_scales.append(mine.loss_scale)
        expected_trackers.append(mine.growth_tracker)
    shown = "".join("x" if flag else "." for flag in OVERFLOWS)
    setting = "DynamicLossScaler(init_scale=1024, growth_factor=4, backoff_factor=0.25, growth_interval=3)"
    no_reset = simulate_scaler(OVERFLOWS, init, growth, backoff, interval, reset=False)
    assert_close(
        torch.tensor(scales, dtype=torch.float64),
        torch.tensor(expected_scales, dtype=torch.float64),
        name=f"{setting}.loss_scale after each update(found_inf) for the overflows {shown} (x = inf found)",
        mistakes={
            "the growth tracker is not reset on an overflow": torch.tensor(
                [s for s, _ in no_reset], dtype=torch.float64
            ),
            "the default factors (2 and 0.5) instead of growth_factor and backoff_factor": torch.tensor(
                [s for s, _ in simulate_scaler(OVERFLOWS, init, 2.0, 0.5, interval)], dtype=torch.float64
            ),
        },
        hint="overflow: scale *= backoff_factor, tracker = 0; else tracker += 1 and, at growth_interval, "
        "scale *= growth_factor and tracker = 0",
    )
    assert_close(
        torch.tensor(trackers, dtype=torch.float64),
        torch.tensor(expected_trackers, dtype=torch.float64),
        name=f"{setting}.growth_tracker after each update(found_inf) for the overflows {shown}",
        hint="count good steps since the scale last changed; an overflow resets the count",
    )
    loss = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    assert_close(
        scaler.scale(loss),
        mine.scale(loss).detach(),
        name=f"scale(loss) with loss_scale {expected_scales[-1]:g}",
        hint="loss * loss_scale",
    )


def test_loss_scaler_unscale(student, reference):
    scale = 2.0**12
    scaler = student.DynamicLossScaler(scale)
    _, holder = remote_net(student, torch.float32, seed=50, grad_scale=scale)
    names = {name: torch.zeros(0) for name in NET_GRADS}
    before = student_grads(student, holder, names, name="the scaled gradients")
    found = scaler.unscale_(holder)
    if found is not False:
        fails(f"unscale_ of finite gradients returned {found!r}; expected False (a Python bool: no inf or NaN found)")
    after = student_grads(student, holder, names, name="the gradients after unscale_")
    for name in NET_GRADS:
        assert_close(
            after[name],
            before[name] / scale,
            name=f"gradient of {name} after unscale_ with loss_scale {scale:g}",
            mistakes={"the gradients were not changed: divide each one in place (grad.div_)": before[name]},
            hint="divide every gradient by loss_scale, in place",
        )
    net, holder = remote_net(student, torch.float32, seed=51, grad_scale=1.0)
    bad = randn(4, 5, dtype=torch.float32, seed=52)
    bad[2, 3] = math.inf
    net.vjp(randn(4, 7, dtype=torch.float32, seed=53), grad_outputs=bad)  # the gradients now hold inf and NaN
    found = student.DynamicLossScaler(scale).unscale_(holder)
    if found is not True:
        fails(f"unscale_ of gradients holding inf and NaN returned {found!r}; expected True (found inf)")


def test_loss_scaler_finds_nan(student):
    """Gradients with NaN but no inf (0 * inf, inf - inf upstream): unscale_ must report them too."""
    net, holder = remote_net(student, torch.float32, seed=55, grad_scale=1.0)
    bad = randn(4, 5, dtype=torch.float32, seed=56)
    bad[1, 2] = math.nan
    net.vjp(randn(4, 7, dtype=torch.float32, seed=57), grad_outputs=bad)  # the gradients now hold NaN, no inf
    found = student.DynamicLossScaler(2.0**4).unscale_(holder)
    if found is not True:
        fails(
            f"unscale_ of gradients holding NaN (and no inf) returned {found!r}; expected True: NaN counts as "
            "found inf too (torch.isfinite catches both; torch.isinf misses NaN)"
        )


# -- mixed precision: forward_backward ---------------------------------------------------------------------


def reference_loss_and_grads(reference, ref, ids, mask):
    logits = ref(ids, attention_mask=mask)
    loss = reference.causal_lm_loss(logits, ids, mask)
    return loss.detach(), logits.detach(), reference_grads(ref, loss)


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_forward_backward(student, reference, padded):
    ref, mine = build_gpt(student, reference, torch.float64, seed=60)
    ids = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=61)
    mask = right_padded(LENGTHS, LENGTH) if padded else None
    other = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=62)
    student.forward_backward(mine, other, mask)  # a first batch: its gradients must not stay
    result = student.forward_backward(mine, ids, mask)
    loss, logits = expect_sequence(result, 2, name="forward_backward(model, input_ids, attention_mask)")
    expected_loss, expected_logits, expected = reference_loss_and_grads(reference, ref, ids, mask)
    what = f"forward_backward on a {'right-padded ' if padded else ''}batch of (3, {LENGTH}), float64"
    assert_close(
        logits,
        expected_logits,
        name=f"{what}: the logits it returns",
        hint="model(input_ids, attention_mask=attention_mask)",
    )
    assert_close(
        loss,
        expected_loss,
        name=f"{what}: the loss",
        mistakes=causal_mistakes(expected_logits, ids, mask),
        hint="causal_lm_loss(logits, input_ids, attention_mask), returned detached",
    )
    grads = student_grads(student, mine, expected, name=what)
    _, _, first = reference_loss_and_grads(reference, ref, other, mask)
    for name, want in expected.items():
        assert_close(
            grads[name],
            want,
            name=f"{what}: gradient of {name}",
            mistakes={
                "gradients accumulate across calls: start with model.zero_grad(set_to_none=True)": want + first[name]
            },
            hint="zero the gradients, then backward of the loss",
        )


def test_forward_backward_bfloat16(student, reference):
    # Weights of std 0.2 keep the logits moderate (about 5). bfloat16 keeps 8 significant bits
    # (a rounding error of up to 2^-8 = 0.4 % per operation): on this model the loss is off by ~2e-4 relative and the
    # gradients by ~1.3 % (all of them together, as one vector) against float32. Allowed: 1e-2
    # on the loss and 5e-2 on the gradients. A float32 run passes too easily to tell, so the
    # logits' dtype is checked: autocast must really have run.
    ref, mine = build_gpt(student, reference, torch.float32, seed=70, std=0.2)
    ids = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=71)
    mask = right_padded(LENGTHS, LENGTH)
    result = student.forward_backward(mine, ids, mask, amp_dtype="bfloat16")
    loss, logits = expect_sequence(result, 2, name="forward_backward(..., amp_dtype='bfloat16')")
    expect_tensor(
        logits,
        name="forward_backward(..., amp_dtype='bfloat16'): the logits",
        shape=(3, LENGTH, CONFIG["vocab_size"]),
        dtype=torch.bfloat16,
        hint="run the model inside torch.autocast('cpu', dtype=torch.bfloat16): the matrix products then give bfloat16",
    )
    expected_loss, _, expected = reference_loss_and_grads(reference, ref, ids, mask)
    expect_tensor(
        loss,
        name="forward_backward(..., amp_dtype='bfloat16'): the loss",
        shape=(),
        dtype=torch.float32,
        hint="compute the loss outside autocast, on logits.float()",
    )
    assert_close(
        loss,
        expected_loss,
        name="forward_backward(..., amp_dtype='bfloat16'): the loss against float32",
        rtol=1e-2,
        atol=1e-3,
        hint="the same loss as in float32, up to bfloat16 rounding",
    )
    grads = student_grads(student, mine, expected, name="forward_backward(..., amp_dtype='bfloat16')")
    for name, grad in grads.items():
        expect_tensor(
            grad,
            name=f"bfloat16 autocast: gradient of {name}",
            dtype=torch.float32,
            hint="the parameters (and so their gradients) stay float32: use autocast, do not convert the model",
        )
    error = relative_error(grads, expected)
    if not error < 5e-2:
        fails(
            f"forward_backward(..., amp_dtype='bfloat16'): the gradients differ from float32's by {error:.1%} "
            "(relative, all together); bfloat16 rounding explains up to about 5 %"
        )


def test_forward_backward_float16_with_loss_scaling(student, reference):
    # float16 keeps 11 significant bits: the gradients are ~0.2 % off float32 here; allowed 1 %.
    # They must still carry the scale (unscaling is train_step's job), and the loss must not.
    scale = 2.0**10
    ref, mine = build_gpt(student, reference, torch.float32, seed=80, std=0.2)
    ids = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=81)
    mask = right_padded(LENGTHS, LENGTH)
    scaler = student.DynamicLossScaler(scale)
    result = student.forward_backward(mine, ids, mask, amp_dtype="float16", scaler=scaler)
    loss, logits = expect_sequence(result, 2, name="forward_backward(..., amp_dtype='float16', scaler=scaler)")
    expect_tensor(
        logits,
        name="forward_backward(..., amp_dtype='float16'): the logits",
        shape=(3, LENGTH, CONFIG["vocab_size"]),
        dtype=torch.float16,
        hint="run the model inside torch.autocast('cpu', dtype=torch.float16)",
    )
    expected_loss, _, expected = reference_loss_and_grads(reference, ref, ids, mask)
    assert_close(
        loss,
        expected_loss,
        name="forward_backward(..., amp_dtype='float16', scaler with loss_scale 1024): the returned loss",
        rtol=1e-2,
        atol=1e-3,
        mistakes={"the scaled loss was returned; return the loss itself": expected_loss * scale},
        hint="return the unscaled loss, in float32",
    )
    grads = student_grads(student, mine, expected, name="forward_backward with float16 and a scaler")
    unscaled = {name: grad / scale for name, grad in grads.items()}
    error = relative_error(unscaled, expected)
    if not error < 1e-2:
        if relative_error(grads, expected) < 1e-2:
            fails("forward_backward with a scaler: the gradients are not scaled; call backward on scaler.scale(loss)")
        fails(
            f"forward_backward(..., amp_dtype='float16', scaler with loss_scale 1024): the gradients divided by 1024 "
            f"differ from float32's by {error:.1%} (relative, all together); float16 rounding explains under 1 %"
        )
