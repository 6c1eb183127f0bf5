"""Hidden tests for week 10, AdamW's parameter groups and the training step (handout sections 5 and 6).

How the week is graded: conftest.py.
"""

from __future__ import annotations

import math

import torch

from autograder import (
    assert_close,
    assert_equal,
    assert_no_forbidden_ops,
)
from autograder.testing import TRAINING_CONFIG as CONFIG
from autograder.testing import TRAINING_LENGTH as LENGTH
from autograder.testing import TRAINING_LENGTHS as LENGTHS
from autograder.testing import (
    build_gpt,
    fails,
    gpt_state,
    number,
    right_padded,
    token_ids,
)
from autograder.testing import parameter_grads as reference_grads

# -- the optimiser and the training step ------------------------------------------------------------------


def test_configure_optimizer(student, reference):
    check_optimizer_groups(student, reference, 0.01, 0.1, (0.9, 0.95), seed=90)


def test_configure_optimizer_options(student, reference):
    """lr, weight_decay and betas are the caller's (not nanoGPT's defaults); eps is 1e-8."""
    check_optimizer_groups(student, reference, 3e-4, 0.05, (0.8, 0.99), seed=95)


def check_optimizer_groups(student, reference, lr: float, weight_decay: float, betas: tuple, seed: int) -> None:
    ref, mine = build_gpt(student, reference, torch.float64, seed=seed)
    call = f"configure_optimizer(model, lr={lr:g}, weight_decay={weight_decay:g}, betas={betas})"
    optimizer = student.configure_optimizer(mine, lr, weight_decay, betas)
    groups = optimizer.param_groups.fetch()
    expected = reference.configure_optimizer(ref, lr, weight_decay, betas).param_groups
    if not isinstance(groups, list) or len(groups) != 2:
        fails(
            f"configure_optimizer: expected an optimizer with 2 parameter groups, got {len(groups) if isinstance(groups, list) else groups!r}"
        )
    names = dict(ref.named_parameters())
    for i, (group, want) in enumerate(zip(groups, expected, strict=True)):
        label = ["0 (decayed)", "1 (not decayed)"][i]
        if abs(float(group.get("weight_decay", -1)) - want["weight_decay"]) > 1e-12:
            fails(
                f"{call}: group {label} has weight_decay {group.get('weight_decay')!r}, expected {want['weight_decay']:g}"
            )
        if abs(float(group.get("lr", -1)) - lr) > 1e-12 or tuple(group.get("betas", ())) != tuple(betas):
            fails(
                f"{call}: group {label} should have lr {lr:g} and betas {tuple(betas)}, got lr {group.get('lr')!r}, "
                f"betas {group.get('betas')!r}"
            )
        if group.get("eps") != 1e-8:
            fails(f"{call}: group {label} has eps {group.get('eps')!r}, expected 1e-8")
        shapes = sorted(tuple(p.shape) for p in group["params"])
        wanted = sorted(tuple(p.shape) for p in want["params"])
        if shapes != wanted:
            which = [n for n, p in names.items() if any(p is q for q in want["params"])]
            fails(
                f"{call}: group {label} holds parameters of shapes {shapes}; expected "
                f"{len(wanted)} parameters ({', '.join(which[:4])}, ...): "
                + (
                    "2-D and larger (matrices, embeddings) get weight decay"
                    if i == 0
                    else "biases and norm weights get none"
                )
            )


def train_variant(reference, config_seed: int, batches, variant: str = ""):
    """The reference training loop, or a known mistake of it; returns the state after the steps."""
    ref = reference.GPT(**CONFIG).double()
    ref.load_state_dict(gpt_state(reference, config_seed, 0.5))
    ref.eval()
    if variant == "decay_everything":
        optimizer = torch.optim.AdamW(ref.parameters(), lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    else:
        optimizer = reference.configure_optimizer(ref, 0.01, 0.1, (0.9, 0.95))
    for ids, mask in batches:
        reference.train_step(ref, optimizer, ids, mask, max_norm=math.inf if variant == "no_clip" else 1.0)
    return {name: value.detach() for name, value in ref.state_dict().items()}


TRAIN_MISTAKES = {
    "weight decay on every parameter: biases and norm weights get none (configure_optimizer's groups)": "decay_everything",
    "the gradients were not clipped (clip_grad_norm before optimizer.step())": "no_clip",
}


def test_train_step(student, reference):
    ref, mine = build_gpt(student, reference, torch.float64, seed=100)
    batches = [
        (token_ids(3, LENGTH, CONFIG["vocab_size"], seed=101), right_padded(LENGTHS, LENGTH)),
        (token_ids(3, LENGTH, CONFIG["vocab_size"], seed=102), right_padded([14, 19, 9], LENGTH)),
    ]
    optimizer = student.configure_optimizer(mine, 0.01, 0.1, (0.9, 0.95))
    expected_optimizer = reference.configure_optimizer(ref, 0.01, 0.1, (0.9, 0.95))
    initial = gpt_state(reference, 100, 0.5)
    for i, (ids, mask) in enumerate(batches):
        got = student.train_step(mine, optimizer, ids, mask, max_norm=1.0)
        want = reference.train_step(ref, expected_optimizer, ids, mask, max_norm=1.0)
        what = f"train_step number {i + 1} (AdamW lr 0.01, weight decay 0.1, max_norm 1), float64"
        if not isinstance(got, dict) or not {"loss", "grad_norm", "skipped"} <= set(got):
            fails(f"{what}: expected a dict with 'loss', 'grad_norm' and 'skipped', got {got!r:.200}")
        if got["skipped"] is not False:
            fails(f"{what}: 'skipped' is {got['skipped']!r}; without a scaler no step is skipped (False)")
        for key, hint in (
            ("loss", "the loss of forward_backward, as a float"),
            ("grad_norm", "clip_grad_norm's result: the global norm before clipping"),
        ):
            assert_close(
                torch.tensor(number(got[key], name=f"{what}: {key}"), dtype=torch.float64),
                torch.tensor(want[key], dtype=torch.float64),
                name=f"{what}: {key!r}",
                hint=hint,
            )
        state = mine.state_dict()
        wrong = {text: train_variant(reference, 100, batches[: i + 1], v) for text, v in TRAIN_MISTAKES.items()}
        for name, value in ref.state_dict().items():
            # The key biases get no gradient (softmax ignores a constant added to every score): theirs is rounding
            # noise, which Adam divides by eps = 1e-8; two correct implementations differ there at the 1e-10 level.
            noise = {"atol": 1e-8} if name.endswith("k_proj.bias") else {}
            assert_close(
                state[name],
                value,
                name=f"{what}: the parameter {name} afterwards",
                mistakes={"the parameters did not change: call optimizer.step()": initial[name]}
                | {text: params[name] for text, params in wrong.items()},
                hint="forward_backward, clip_grad_norm(model, max_norm), optimizer.step()",
                **noise,
            )


def test_train_step_skips_overflow(student, reference):
    # A loss scale of 2^40 makes the float16 gradients overflow: the step must be skipped.
    _, mine = build_gpt(student, reference, torch.float32, seed=110, std=0.2)
    ids, mask = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=111), right_padded(LENGTHS, LENGTH)
    before = mine.state_dict()
    optimizer = student.configure_optimizer(mine, 0.01)
    scaler = student.DynamicLossScaler(2.0**40, growth_interval=5)
    got = student.train_step(mine, optimizer, ids, mask, max_norm=1.0, amp_dtype="float16", scaler=scaler)
    what = "train_step(..., amp_dtype='float16', scaler with loss_scale 2^40), whose gradients overflow"
    if not isinstance(got, dict) or got.get("skipped") is not True:
        fails(f"{what}: 'skipped' should be True, got {got.get('skipped') if isinstance(got, dict) else got!r}")
    if not math.isinf(number(got.get("grad_norm"), name=f"{what}: grad_norm")):
        fails(f"{what}: 'grad_norm' should be inf for a skipped step, got {got.get('grad_norm')!r}")
    after = mine.state_dict()
    for name, value in before.items():
        assert_equal(
            after[name],
            value,
            name=f"{what}: the parameter {name}",
            hint="skip optimizer.step() when unscale_ found an inf or NaN",
        )
    new_scale = number(scaler.loss_scale.fetch(), name="loss_scale")
    if new_scale != 2.0**39:
        fails(f"{what}: loss_scale is {new_scale:g} afterwards, expected 2^39 (halved: scaler.update(found_inf=True))")
    scaler = student.DynamicLossScaler(2.0**8)
    got = student.train_step(mine, optimizer, ids, mask, max_norm=1.0, amp_dtype="float16", scaler=scaler)
    what = "train_step(..., amp_dtype='float16', scaler with loss_scale 2^8)"
    if not isinstance(got, dict) or got.get("skipped") is not False:
        fails(f"{what}: nothing overflows, so 'skipped' should be False, got {got!r:.200}")
    ref = reference.GPT(**CONFIG)
    ref.load_state_dict(before)
    ref.eval()
    float32_grads = reference_grads(ref, reference.causal_lm_loss(ref(ids, mask), ids, mask))
    expected_norm = math.sqrt(sum(float(g.double().square().sum()) for g in float32_grads.values()))
    norm = number(got.get("grad_norm"), name=f"{what}: grad_norm")
    if not abs(norm - expected_norm) <= 0.02 * expected_norm:
        hint = (
            " (it is about 256 times too large: unscale_ before clipping)"
            if abs(norm / expected_norm - 256) < 10
            else ""
        )
        fails(f"{what}: grad_norm is {norm:.4g}, float32 gives {expected_norm:.4g}: more than float16 rounding{hint}")
    changed = mine.state_dict()
    if all(torch.equal(changed[name], value) for name, value in before.items()):
        fails(f"{what}: the parameters did not change; the step must be taken")


def test_train_step_without_clipping(student, reference):
    """max_norm=None (the default) clips nothing: clip_grad_norm(model, inf) only measures the norm."""
    ref, mine = build_gpt(student, reference, torch.float64, seed=105)
    ids, mask = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=106), right_padded(LENGTHS, LENGTH)
    optimizer = student.configure_optimizer(mine, 0.01, 0.1, (0.9, 0.95))
    got = student.train_step(mine, optimizer, ids, mask)
    want = reference.train_step(ref, reference.configure_optimizer(ref, 0.01, 0.1, (0.9, 0.95)), ids, mask)
    what = "train_step(model, optimizer, input_ids, attention_mask) without max_norm (AdamW lr 0.01), float64"
    if not isinstance(got, dict) or "grad_norm" not in got:
        fails(f"{what}: expected a dict with 'loss', 'grad_norm' and 'skipped', got {got!r:.200}")
    assert_close(
        torch.tensor(number(got["grad_norm"], name=f"{what}: grad_norm"), dtype=torch.float64),
        torch.tensor(want["grad_norm"], dtype=torch.float64),
        name=f"{what}: 'grad_norm' (about {want['grad_norm']:.2f}: clipping at 1 would change the step)",
        hint="the global norm before clipping, measured with clip_grad_norm(model, float('inf'))",
    )
    clipped_ref = reference.GPT(**CONFIG).double()
    clipped_ref.load_state_dict(gpt_state(reference, 105, 0.5))
    clipped_ref.eval()
    reference.train_step(
        clipped_ref, reference.configure_optimizer(clipped_ref, 0.01, 0.1, (0.9, 0.95)), ids, mask, max_norm=1.0
    )
    clipped = clipped_ref.state_dict()
    state = mine.state_dict()
    for name, value in ref.state_dict().items():
        noise = {"atol": 1e-8} if name.endswith("k_proj.bias") else {}  # see test_train_step
        assert_close(
            state[name],
            value,
            name=f"{what}: the parameter {name} afterwards",
            mistakes={"max_norm=None clipped at 1.0; None means no clipping (max_norm inf)": clipped[name]},
            hint="max_norm=None: clip_grad_norm(model, float('inf')) (measures only), then optimizer.step()",
            **noise,
        )


def test_train_step_returns_numbers(student, reference):
    """'loss' and 'grad_norm' are Python floats, 'skipped' a bool; a good step with a scaler updates it too."""
    _, mine = build_gpt(student, reference, torch.float32, seed=115, std=0.2)
    ids, mask = token_ids(3, LENGTH, CONFIG["vocab_size"], seed=116), right_padded(LENGTHS, LENGTH)
    optimizer = student.configure_optimizer(mine, 0.01)
    scaler = student.DynamicLossScaler(2.0**8, growth_interval=5)
    got = student.train_step(mine, optimizer, ids, mask, max_norm=1.0, scaler=scaler)
    what = "train_step(..., max_norm=1.0, scaler=DynamicLossScaler(256, growth_interval=5)), float32"
    if not isinstance(got, dict) or not {"loss", "grad_norm", "skipped"} <= set(got):
        fails(f"{what}: expected a dict with 'loss', 'grad_norm' and 'skipped', got {got!r:.200}")
    for key, kind in (("loss", float), ("grad_norm", float), ("skipped", bool)):
        if type(got[key]) is not kind:
            shown = (
                f"a tensor of shape {tuple(got[key].shape)}" if isinstance(got[key], torch.Tensor) else repr(got[key])
            )
            fails(
                f"{what}: {key!r} is {type(got[key]).__name__} ({shown:.60}); it should be a Python {kind.__name__} "
                "(float(loss), float(clip_grad_norm(...)))"
            )
    if got["skipped"]:
        fails(f"{what}: the step was skipped although nothing overflows")
    tracker = scaler.growth_tracker.fetch()
    if tracker != 1 or type(tracker) is not int:
        fails(
            f"{what}: growth_tracker is {tracker!r} after one good step, expected 1: call scaler.update(found_inf) "
            "after every step, skipped or not"
        )


def test_mixed_precision_uses_no_builtin(student, reference, forbidden):
    _, mine = build_gpt(student, reference, torch.float32, seed=120, std=0.2)
    ids = token_ids(2, 11, CONFIG["vocab_size"], seed=121)
    optimizer = student.configure_optimizer(mine, 0.01)
    student.train_step(
        mine, optimizer, ids, None, max_norm=0.5, amp_dtype="float16", scaler=student.DynamicLossScaler(2.0**8)
    )
    assert_no_forbidden_ops(
        student.last_ops,
        ["*_amp_*", "*clip_grad*", "*_foreach_norm*", *forbidden],
        name="train_step with float16 and a DynamicLossScaler",
        hint="use your DynamicLossScaler and clip_grad_norm, not torch.amp.GradScaler or clip_grad_norm_",
    )
