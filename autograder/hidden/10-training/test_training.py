"""Hidden tests for week 10 (training: objectives, schedules, clipping, mixed precision, checkpointing, MoE, the lab).

Expected values come from the reference solution (``reference``) run here, in the trusted
grader, with the same weights loaded into the student's modules by name;
``tests/test_week10_reference.py`` checks that reference against ``F.cross_entropy``,
``GPT2LMHeadModel`` and ``BertForMaskedLM`` losses, ``transformers``' cosine and inverse-sqrt
schedules, ``clip_grad_norm_``, ``torch.amp.GradScaler``, ``torch.optim.AdamW`` with
nanoGPT's parameter groups, Mixtral's sparse MoE block, Switch Transformer's
load-balancing loss and a dense float64 computation of the routing.

Clipping and loss-scaling tests build a small ``nn.Sequential`` in the student's process from
``torch.nn`` (the ``nn`` their file imports), so they do not depend on the GPT. The student's
``GPT`` subclasses week 06's (the reference ``gpt`` module when graded) and overrides its
``run_blocks``; an old single-file submission with its own copy of week 06 grades the same.
Mixed-precision results are compared with float32 at tolerances stated beside each test.
The lab's artefacts (``report.md``, ``loss_curve.png``, ``train_log.csv``, ``checkpoint.pt``)
are read with ``handed_in`` and never executed, and their points come from evidence the grader
produces: the checkpoint is read here as plain tensors into the reference's own ``GPT`` (the
student's ``load_checkpoint`` has its own round-trip test) and its held-out loss measured here,
the log must agree with that measurement, the plot is decoded, and a short seeded training run
of the student's own code must follow the reference's. The report is graded by a person
(``manual:`` in course.yml); its test here checks only its form.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import struct
import zipfile

import pytest
import torch
import torch.nn.functional as F

from autograder import (
    CheckFailed,
    assert_close,
    assert_equal,
    assert_no_forbidden_ops,
    expect_sequence,
    expect_tensor,
    randn,
)

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["fp32", "fp64"]
DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}
FORBIDDEN = [
    "*gelu*",
    "*layer_norm*",
    "*dropout*",
    "*scaled_dot_product*",
    "*multi_head_attention*",
    "*flash_attention*",
    "*efficient_attention*",
]
# Whole-model float32 results differ between processes in the last bits (matmul blocking and
# thread count change the summation order), and logits reach ~15 here: allow 1e-4 absolute.
LOOSE = {"rtol": 1e-5, "atol": 1e-4}
# A tiny GPT: 61 tokens, 24 positions, 2 layers of width 32 with 4 heads and d_ff 48; dropout 0.1
# (the models are in eval mode, so it must do nothing).
CONFIG = {
    "vocab_size": 61,
    "max_len": 24,
    "d_model": 32,
    "n_heads": 4,
    "n_layers": 2,
    "d_ff": 48,
    "dropout": 0.1,
    "eps": 1e-5,
}
LENGTH = 19
LENGTHS = [19, 12, 5]  # right padding: rows of 19, 12 and 5 real tokens


def token_ids(batch: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def right_padded(lengths: list[int], length: int) -> torch.Tensor:
    """``(B, T)`` int64 attention mask, 1 = real token, the padding on the right."""
    return (torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]).long()


def fails(message: str) -> None:
    raise CheckFailed(message)


def number(value, *, name: str) -> float:
    """A Python number (or a one-element tensor) from the student, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        fails(f"{name}: expected a number, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            fails(f"{name}: expected a number, got a tensor of shape {tuple(value.shape)}")
        return float(value.double().item())
    return float(value)


def gpt_state(reference, seed: int, std: float, config: dict | None = None) -> dict[str, torch.Tensor]:
    """Random float64 weights under GPT's names: std ``std``; LayerNorm weights 1 + std N(0, 1)."""
    model = reference.GPT(**(config or CONFIG))
    state = {}
    for i, (name, value) in enumerate(model.state_dict().items()):
        is_norm_weight = "norm" in name and name.endswith("weight")
        state[name] = randn(*value.shape, seed=seed + i, scale=std) + (1.0 if is_norm_weight else 0.0)
    return state


def build_gpt(student, reference, dtype: torch.dtype, seed: int, std: float = 0.5, config: dict | None = None):
    """The reference GPT and the student's, with the same weights, both in eval mode."""
    config = config or CONFIG
    state = {name: value.to(dtype) for name, value in gpt_state(reference, seed, std, config).items()}
    ref = reference.GPT(**config).to(dtype)
    ref.load_state_dict(state)
    ref.eval()
    mine = student.GPT(**config)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    mine.eval()
    return ref, mine


def reference_grads(ref, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    names, params = zip(*ref.named_parameters(), strict=True)
    return dict(zip(names, torch.autograd.grad(loss, params), strict=True))


def student_grads(student, module, expected: dict[str, torch.Tensor], *, name: str) -> dict[str, torch.Tensor]:
    """The student's ``gradients(module)``, checked to be a dict with the expected names."""
    grads = student.gradients(module)
    if not isinstance(grads, dict):
        fails(f"{name}: gradients(model) returned {type(grads).__name__}, expected a dict")
    missing = sorted(set(expected) - set(grads))
    if missing:
        fails(f"{name}: these parameters have no gradient: {', '.join(missing[:6])}")
    return {key: grads[key] for key in expected}


def relative_error(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> float:
    """``||actual - expected|| / ||expected||`` over all gradients together (one long vector)."""
    difference = sum(float((actual[k].double() - expected[k].double()).square().sum()) for k in expected)
    size = sum(float(expected[k].double().square().sum()) for k in expected)
    return math.sqrt(difference / size)


# -- objectives ---------------------------------------------------------------------------------


def loss_inputs(dtype: torch.dtype, seed: int, batch: int = 4, length: int = 13, vocab: int = 37):
    logits = randn(batch, length, vocab, dtype=dtype, seed=seed, scale=3.0)
    ids = token_ids(batch, length, vocab, seed=seed + 1)
    return logits, ids


def masked_mean_ce(logits: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    per = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(targets.shape)
    return (per * keep).sum() / keep.sum().clamp(min=1)


def causal_mistakes(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
    real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
    per = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none").view(ids[:, 1:].shape)
    keep = real[:, 1:]
    mistakes = {
        "no shift: logits[:, t] was compared with input_ids[:, t] (position t predicts token t + 1)": masked_mean_ce(
            logits, ids, real
        ),
        "shifted the wrong way: logits[:, 1:] against input_ids[:, :-1]": masked_mean_ce(
            logits[:, 1:], ids[:, :-1], real[:, :-1]
        ),
    }
    if mask is not None:
        rows = (per * keep).sum(1) / keep.sum(1).clamp(min=1)
        mistakes |= {
            "padded targets are counted: ignore the targets whose attention_mask is 0": per.mean(),
            "divided by every position, padding included: divide by the number of counted targets": (per * keep).sum()
            / keep.numel(),
            "the mean of per-sequence means: average over all counted targets of the batch at once": rows[
                keep.any(1)
            ].mean(),
            "the mask of the input position (mask[:, :-1]) instead of the target's (mask[:, 1:])": masked_mean_ce(
                logits[:, :-1], ids[:, 1:], real[:, :-1]
            ),
        }
    return mistakes


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


# -- gradient clipping -----------------------------------------------------------------------------


def remote_net(student, dtype: torch.dtype, seed: int, grad_scale: float):
    """In the student's process: ``Sequential(Linear(7, 6), Linear(6, 5, bias=False))`` with gradients, in a
    ``ModuleList`` beside an unused ``Linear(3, 2)`` (whose parameters have no gradient)."""
    net = student.nn.Sequential(student.nn.Linear(7, 6), student.nn.Linear(6, 5, bias=False))
    unused = student.nn.Linear(3, 2)
    if dtype == torch.float64:
        net.double()
        unused.double()
    state = {
        "0.weight": randn(6, 7, dtype=dtype, seed=seed, scale=0.5),
        "0.bias": randn(6, dtype=dtype, seed=seed + 1, scale=0.5),
        "1.weight": randn(5, 6, dtype=dtype, seed=seed + 2, scale=0.5),
    }
    net.load_state_dict(state)
    holder = student.nn.ModuleList([net, unused])
    x = randn(4, 7, dtype=dtype, seed=seed + 3)
    net.vjp(x, grad_outputs=randn(4, 5, dtype=dtype, seed=seed + 4, scale=grad_scale))
    return net, holder


def local_params(grads: dict[str, torch.Tensor]) -> list[torch.nn.Parameter]:
    params = []
    for g in grads.values():
        p = torch.nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        params.append(p)
    params.append(torch.nn.Parameter(torch.zeros(2, 3, dtype=next(iter(grads.values())).dtype)))  # no gradient
    return params


NET_GRADS = ["0.0.weight", "0.0.bias", "0.1.weight"]
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


def test_mixed_precision_uses_no_builtin(student, reference):
    _, mine = build_gpt(student, reference, torch.float32, seed=120, std=0.2)
    ids = token_ids(2, 11, CONFIG["vocab_size"], seed=121)
    optimizer = student.configure_optimizer(mine, 0.01)
    student.train_step(
        mine, optimizer, ids, None, max_norm=0.5, amp_dtype="float16", scaler=student.DynamicLossScaler(2.0**8)
    )
    assert_no_forbidden_ops(
        student.last_ops,
        ["*_amp_*", "*clip_grad*", "*_foreach_norm*", *FORBIDDEN],
        name="train_step with float16 and a DynamicLossScaler",
        hint="use your DynamicLossScaler and clip_grad_norm, not torch.amp.GradScaler or clip_grad_norm_",
    )


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
    plain = number(student.saved_activation_bytes(mine, ids), name="saved_activation_bytes without checkpointing")
    mine.set_gradient_checkpointing(True)
    checkpointed = number(student.saved_activation_bytes(mine, ids), name="saved_activation_bytes with checkpointing")
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


# -- mixture of experts --------------------------------------------------------------------------------------

# (d_model, d_ff, n_experts, top_k, capacity_factor, norm_topk_prob, activation, bias)
MOE_CASES = {
    "E4-k2-cf1.0": (24, 40, 4, 2, 1.0, True, "gelu", True),
    "E5-k1-cf0.8-switch": (24, 40, 5, 1, 0.8, False, "relu", True),
    "E4-k2-nocap-swiglu": (24, 40, 4, 2, None, True, "swiglu", False),
    "E6-k3-cf0.5": (24, 32, 6, 3, 0.5, True, "gelu_tanh", True),
    "E4-k2-cf1.1-raw-gates": (24, 40, 4, 2, 1.1, False, "gelu", True),  # norm_topk_prob=False with k = 2
    "E3-k1-cf1.0-normalised": (24, 40, 3, 1, 1.0, True, "relu", True),  # norm_topk_prob=True with k = 1: gates 1
}
MOE_TOKENS = (3, 7)  # N = 21 tokens


def moe_kwargs(case: str) -> dict:
    d, f, e, k, cf, norm, activation, bias = MOE_CASES[case]
    return {
        "d_model": d,
        "d_ff": f,
        "n_experts": e,
        "top_k": k,
        "capacity_factor": cf,
        "norm_topk_prob": norm,
        "activation": activation,
        "bias": bias,
    }


def build_moe(student, reference, case: str, dtype: torch.dtype, seed: int):
    kwargs = moe_kwargs(case)
    ref = reference.MoEFeedForward(**kwargs).to(dtype)
    state = {
        name: randn(*v.shape, dtype=dtype, seed=seed + i, scale=0.5)
        for i, (name, v) in enumerate(ref.state_dict().items())
    }
    ref.load_state_dict(state)
    mine = student.MoEFeedForward(**kwargs)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    return ref, mine


def moe_input(case: str, dtype: torch.dtype, seed: int) -> torch.Tensor:
    return randn(*MOE_TOKENS, MOE_CASES[case][0], dtype=dtype, seed=seed)


def route_variant(ref, tokens: torch.Tensor, variant: str = ""):
    """The routing of ``ref`` for ``tokens`` (N, D), or a known mistake of it, written with plain loops."""
    probs = torch.softmax(ref.router(tokens), dim=0 if variant == "softmax_over_tokens" else -1)
    top, index = probs.topk(ref.top_k, dim=-1)
    normalise = ref.norm_topk_prob if variant != "no_renormalisation" else False
    gates = top / top.sum(-1, keepdim=True) if normalise else top
    n, k = index.shape
    capacity = ref.capacity(n) + (1 if variant == "capacity_plus_one" else 0)
    if variant == "no_capacity":
        capacity = n * k
    order = (
        [(t, j) for t in range(n) for j in range(k)]
        if variant == "token_major"
        else [(t, j) for j in range(k) for t in range(n)]
    )
    used = [0] * ref.n_experts
    kept = torch.zeros(n, k, dtype=torch.bool)
    for t, j in order:
        e = int(index[t, j])
        if used[e] < capacity:
            kept[t, j] = True
            used[e] += 1
    return probs, index, gates, kept


def combine(ref, tokens: torch.Tensor, index, gates, kept) -> torch.Tensor:
    """Every expert on every token, weighted by the (kept) gates: the dense form of the MoE output."""
    weights = torch.zeros(tokens.shape[0], ref.n_experts, dtype=tokens.dtype)
    weights = weights.scatter_add(1, index, gates * kept)
    outputs = torch.stack([expert(tokens) for expert in ref.experts], dim=1)  # (N, E, D)
    return (weights[:, :, None] * outputs).sum(1)


ROUTE_MISTAKES = {
    "softmax over the tokens (dim 0); the router's softmax is over the experts (dim -1)": "softmax_over_tokens",
    "the top-k gates were not renormalised to sum to 1 (norm_topk_prob=True)": "no_renormalisation",
    "no capacity limit: an expert takes at most C = ceil(capacity_factor * N * k / E) assignments": "no_capacity",
    "capacity C + 1: an assignment is kept when fewer than C came before it": "capacity_plus_one",
    "token-major priority; all first choices come before any second choice (GShard)": "token_major",
}


@pytest.mark.parametrize("case", list(MOE_CASES))
def test_moe_route(student, reference, case):
    ref, mine = build_moe(student, reference, case, torch.float64, seed=150)
    tokens = moe_input(case, torch.float64, seed=151).flatten(0, 1)
    result = expect_sequence(mine.route(tokens), 4, name=f"MoEFeedForward.route, {case}")
    probs, index, gates, kept = result
    want = ref.route(tokens)
    variants = {text: route_variant(ref, tokens, v) for text, v in ROUTE_MISTAKES.items()}
    what = f"MoEFeedForward({', '.join(f'{k}={v!r}' for k, v in moe_kwargs(case).items())}).route on 21 tokens"
    assert_close(
        probs,
        want[0],
        name=f"{what}: probs",
        mistakes={t: v[0] for t, v in variants.items()},
        hint="softmax(router(x), dim=-1)",
    )
    assert_equal(index, want[1], name=f"{what}: expert_index", hint="probs.topk(top_k, dim=-1), largest first")
    gate_mistakes = {t: v[2] for t, v in variants.items()}
    if not ref.norm_topk_prob and ref.top_k > 1:
        top = want[0].gather(1, want[1])
        gate_mistakes["the gates were renormalised although norm_topk_prob=False"] = top / top.sum(-1, keepdim=True)
    assert_close(
        gates,
        want[2],
        name=f"{what}: gates",
        mistakes=gate_mistakes,
        hint="the top-k probabilities, divided by their sum when norm_topk_prob (whatever top_k)",
    )
    assert_equal(
        kept,
        want[3],
        name=f"{what}: kept (capacity {ref.capacity(21)} per expert)",
        mistakes={t: v[3] for t, v in variants.items() if t in list(ROUTE_MISTAKES)[2:]},
        hint="assignments claim places in order: all first choices by token, then all second choices ...; "
        "an expert's assignments beyond its capacity are dropped",
    )


def aux_mistakes(ref, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    probs, index, gates, kept = ref.route(tokens)
    n, e = probs.shape
    top_k = torch.zeros(n, e, dtype=probs.dtype).scatter(1, index, 1.0)
    after_drops = torch.zeros(n, e, dtype=probs.dtype).scatter(1, index[:, :1], kept[:, :1].to(probs.dtype))
    gate_mass = torch.zeros(n, e, dtype=probs.dtype).scatter(1, index, gates)
    top1 = F.one_hot(index[:, 0], e).to(probs.dtype)
    return {
        "f_e counts all k choices of each token (the top-1 choice only, before drops)": e
        * (top_k.mean(0) / ref.top_k * probs.mean(0)).sum(),
        "f_e counts all k choices of each token, not divided by k": e * (top_k.mean(0) * probs.mean(0)).sum(),
        "f_e counted after capacity drops (count the top-1 choices before any drop)": e
        * (after_drops.mean(0) * probs.mean(0)).sum(),
        "P_e from the gates; use the router probabilities of all experts": e * (top1.mean(0) * gate_mass.mean(0)).sum(),
        "missing the factor E (n_experts)": (top1.mean(0) * probs.mean(0)).sum(),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(MOE_CASES))
def test_moe_forward(student, reference, case, dtype):
    ref, mine = build_moe(student, reference, case, dtype, seed=160)
    x = moe_input(case, dtype, seed=161)
    out, aux = expect_sequence(mine(x), 2, name=f"MoEFeedForward forward, {case}")
    expected_out, expected_aux = ref(x)
    tokens = x.flatten(0, 1)
    variants = {text: route_variant(ref, tokens, v) for text, v in ROUTE_MISTAKES.items()}
    loose = LOOSE if dtype == torch.float32 else {}
    what = f"MoEFeedForward({', '.join(f'{k}={v!r}' for k, v in moe_kwargs(case).items())}) on (3, 7, 24), {DTYPE_NAMES[dtype]}"
    assert_close(
        out,
        expected_out.detach(),
        name=f"{what}: the output",
        mistakes={t: combine(ref, tokens, *v[1:]).view_as(x).detach() for t, v in variants.items()},
        hint="sum over kept assignments of gate * expert(x); a dropped assignment contributes nothing",
        **loose,
    )
    assert_close(
        aux,
        expected_aux.detach(),
        name=f"{what}: the load-balancing loss",
        mistakes={t: v.detach() for t, v in aux_mistakes(ref, tokens).items()},
        hint="E * sum_e f_e * P_e: f_e the fraction of tokens whose top-1 expert is e, P_e the mean router probability",
        **loose,
    )


def test_moe_gradients(student, reference):
    case = "E4-k2-cf1.0"
    ref, mine = build_moe(student, reference, case, torch.float64, seed=170)
    x = moe_input(case, torch.float64, seed=171).requires_grad_()
    grad_out = randn(*x.shape, seed=172)
    grad_aux = torch.tensor(0.7, dtype=torch.float64)
    _, grads = mine.vjp(x, grad_outputs=(grad_out, grad_aux))
    out, aux = ref(x)
    params = dict(ref.named_parameters())
    expected = torch.autograd.grad((out * grad_out).sum() + grad_aux * aux, [x, *params.values()])
    hint = "keep the gates (and the router probabilities in the auxiliary loss) differentiable: no .detach() or .item()"
    assert_close(grads[0], expected[0], name=f"MoEFeedForward ({case}): gradient with respect to x", hint=hint)
    mine_grads = student_grads(student, mine, dict(zip(params, expected[1:], strict=True)), name="MoEFeedForward")
    for (name, _), want in zip(params.items(), expected[1:], strict=True):
        assert_close(mine_grads[name], want, name=f"MoEFeedForward ({case}): gradient of {name}", hint=hint)


def test_moe_capacity(student, reference):
    checks = [
        ("E4-k2-cf1.0", 21),
        ("E4-k2-cf1.0", 16),
        ("E5-k1-cf0.8-switch", 21),
        ("E4-k2-nocap-swiglu", 21),
        ("E6-k3-cf0.5", 10),
    ]
    for case, n in checks:
        got = student.MoEFeedForward(**moe_kwargs(case)).capacity(n)
        want = reference.MoEFeedForward(**moe_kwargs(case)).capacity(n)
        _, _, e, k, cf, *_ = MOE_CASES[case]
        if got != want or not isinstance(got, int) or isinstance(got, bool):
            fails(
                f"MoEFeedForward(n_experts={e}, top_k={k}, capacity_factor={cf}).capacity({n}) returned {got!r}, "
                f"expected {want} (ceil(capacity_factor * n_tokens * top_k / n_experts), an int; "
                "n_tokens * top_k without a capacity factor)"
            )


# -- the forbidden built-ins ----------------------------------------------------------------------------------


def test_uses_no_builtin(student, reference):
    ref, mine = build_gpt(student, reference, torch.float32, seed=190)
    mine.set_gradient_checkpointing(True)
    ids = token_ids(2, 11, CONFIG["vocab_size"], seed=191)
    grad_output = randn(2, 11, CONFIG["vocab_size"], seed=192)
    result, _ = mine.vjp(ids, grad_outputs=grad_output)  # the backward pass recomputes every block
    what = "GPT with set_gradient_checkpointing(True), forward and backward"
    assert_no_forbidden_ops(
        student.last_ops,
        FORBIDDEN,
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


# -- the lab: what was handed in -------------------------------------------------------------------------------
#
# Points come from evidence the grader produces itself, never from what the student's code says about its
# files: the checkpoint is read here as plain data (``torch.load(weights_only=True)`` of a size-checked,
# uncompressed archive) into the reference's own GPT class, and its loss on held-out passages is measured
# here; the log must agree with that measurement; the plot is decoded; and a short seeded training run of
# the student's own ``configure_optimizer`` and ``train_step`` must follow the reference's. The report is
# read by a person (``manual:`` in course.yml): ``test_lab_report`` only checks its form, for feedback.

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FINAL_VAL_LOSS = 2.2  # nats per character on tinyshakespeare's validation split; nanoGPT's CPU baseline reaches ~1.88
HELD_OUT_LOSS = 2.5  # on the passages below, from the validation split (the last 10 % of the corpus)
# The log's final validation loss (240 random windows of the split) and the grader's loss of the handed-in
# checkpoint on these passages agree to within 0.03 for lab runs ending at 1.9, 2.5 and 2.5 (context 64 and 128).
LOG_TOLERANCE = 0.1
SAMPLE_PROMPT = "ROMEO:\n"
MAX_CHECKPOINT_PICKLE = 8 * 2**20  # the non-tensor part of checkpoint.pt (the lab's is a few KB)
MAX_PARAMETERS = 8 * 2**20  # the model a checkpoint may describe (the lab's reference recipe has 0.4 M)
CONFIG_KEYS = {"vocab_size", "max_len", "d_model", "n_heads", "n_layers", "d_ff", "dropout", "eps"}
CONFIG_INTS = {"vocab_size": 4096, "max_len": 4096, "d_model": 4096, "n_heads": 64, "n_layers": 64, "d_ff": 16384}
EVAL_CONTEXT = 256  # longest window the held-out loss is measured on
# Four passages of the validation split (offsets 12000, 33000, 61000 and 88000 of it, from a blank line).
HELD_OUT_PASSAGES = (
    """TRANIO:
Is this your speeding? nay, then, good night our part!

PETRUCHIO:
Be patient, gentlemen; I choose her for myself:
If she and I be pleased, what's that to you?
'Tis bargain'd 'twixt us twain, being alone,
That she shall still be curst in company.
I tell you, 'tis incredible to believe
How much she loves me: O, the kindest Kate!
She hung about my neck; and kiss on kiss
She vied so fast, protesting oath on oath,
That in a twink she won me to her love.
O, you are novices! 'tis a world to see,
How tame, when men and women are alone,
A meacock wretch can make the curstest shrew.
Give me thy hand, Kate: I will unto Venice,
To buy apparel 'gainst the wedding-day.
Provide the feast, father, and bid the guests;
I will be sure my Katharina shall be fine.

BAPTISTA:
I know not what to say: but give me your hands;
God send you joy, Petruchio! 'tis a match.

GREMIO:
Amen, say we: we will be witnesses.

PETRUCHIO:
Father, and wife, and gentlemen, adieu;
I will to Venice; Sunday comes apace:
We will have rings and things and fine array;
And kiss me, Kate, we will be married o'Sunday.

GREMIO:
Was ever match clapp'd up so suddenly?

BAPTISTA:
Faith, gentlemen, now I play a merchant's part,
And venture madly on a desperate mart.

TRANIO:
'Twas a commodity lay fretting by you:
'Twill bring you gain, or perish on the seas.

BAPTISTA:
The gain I seek is, quiet in the match.

GREMIO:
No doubt but he hath got a quiet catch.
But now, Baptists, to your younger daughter:
""",
    """GRUMIO:
A cold world, Curtis, in every office but thine; and
therefore fire: do thy duty, and have thy duty; for
my master and mistress are almost frozen to death.

CURTIS:
There's fire ready; and therefore, good Grumio, the news.

GRUMIO:
Why, 'Jack, boy! ho! boy!' and as much news as
will thaw.

CURTIS:
Come, you are so full of cony-catching!

GRUMIO:
Why, therefore fire; for I have caught extreme cold.
Where's the cook? is supper ready, the house
trimmed, rushes strewed, cobwebs swept; the
serving-men in their new fustian, their white
stockings, and every officer his wedding-garment on?
Be the jacks fair within, the jills fair without,
the carpets laid, and every thing in order?

CURTIS:
All ready; and therefore, I pray thee, news.

GRUMIO:
First, know, my horse is tired; my master and
mistress fallen out.

CURTIS:
How?

GRUMIO:
Out of their saddles into the dirt; and thereby
hangs a tale.

CURTIS:
Let's ha't, good Grumio.

GRUMIO:
Lend thine ear.

CURTIS:
Here.

GRUMIO:
There.

CURTIS:
This is to feel a tale, not to hear a tale.

GRUMIO:
And therefore 'tis called a sensible tale: and this
cuff was but to knock at your ear, and beseech
listening. Now I begin: Imprimis, we came down a
foul hill, my master riding behind my mistress,--

CURTIS:
Both of one horse?

GRUMIO:
What's that to thee?

CURTIS:
Why, a horse.

GRUMIO:
Tell thou the tale: but hadst thou not crossed me,
thou shouldst have heard how her horse fell and she
under her horse; thou shouldst have heard in how
""",
    """VINCENTIO:
But is it true? or else is it your pleasure,
Like pleasant travellers, to break a jest
Upon the company you overtake?

HORTENSIO:
I do assure thee, father, so it is.

PETRUCHIO:
Come, go along, and see the truth hereof;
For our first merriment hath made thee jealous.

HORTENSIO:
Well, Petruchio, this has put me in heart.
Have to my widow! and if she be froward,
Then hast thou taught Hortensio to be untoward.

BIONDELLO:
Softly and swiftly, sir; for the priest is ready.

LUCENTIO:
I fly, Biondello: but they may chance to need thee
at home; therefore leave us.

BIONDELLO:
Nay, faith, I'll see the church o' your back; and
then come back to my master's as soon as I can.

GREMIO:
I marvel Cambio comes not all this while.

PETRUCHIO:
Sir, here's the door, this is Lucentio's house:
My father's bears more toward the market-place;
Thither must I, and here I leave you, sir.

VINCENTIO:
You shall not choose but drink before you go:
I think I shall command your welcome here,
And, by all likelihood, some cheer is toward.

GREMIO:
They're busy within; you were best knock louder.

Pedant:
What's he that knocks as he would beat down the gate?

VINCENTIO:
Is Signior Lucentio within, sir?

Pedant:
He's within, sir, but not to be spoken withal.

VINCENTIO:
What if a man bring him a hundred pound or two, to
make merry withal?

Pedant:
Keep your hundred pounds to yourself: he shall
need none, so long as I live.

PETRUCHIO:
Nay, I told you your son was well beloved in Padua.
""",
    """ARIEL:
All hail, great master! grave sir, hail! I come
To answer thy best pleasure; be't to fly,
To swim, to dive into the fire, to ride
On the curl'd clouds, to thy strong bidding task
Ariel and all his quality.

PROSPERO:
Hast thou, spirit,
Perform'd to point the tempest that I bade thee?

ARIEL:
To every article.
I boarded the king's ship; now on the beak,
Now in the waist, the deck, in every cabin,
I flamed amazement: sometime I'ld divide,
And burn in many places; on the topmast,
The yards and bowsprit, would I flame distinctly,
Then meet and join. Jove's lightnings, the precursors
O' the dreadful thunder-claps, more momentary
And sight-outrunning were not; the fire and cracks
Of sulphurous roaring the most mighty Neptune
Seem to besiege and make his bold waves tremble,
Yea, his dread trident shake.

PROSPERO:
My brave spirit!
Who was so firm, so constant, that this coil
Would not infect his reason?

ARIEL:
Not a soul
But felt a fever of the mad and play'd
Some tricks of desperation. All but mariners
Plunged in the foaming brine and quit the vessel,
Then all afire with me: the king's son, Ferdinand,
With hair up-staring,--then like reeds, not hair,--
Was the first man that leap'd; cried, 'Hell is empty
And all the devils are here.'

PROSPERO:
Why that's my spirit!
But was not this nigh shore?

ARIEL:
Close by, my master.

PROSPERO:
But are they, Ariel, safe?

ARIEL:
Not a hair perish'd;
On their sustaining garments not a blemish,
""",
)
HELD_OUT = "\n".join(HELD_OUT_PASSAGES)


def handed_in_text(handed_in, name: str, what: str) -> str:
    data = handed_in(name)
    if data is None:
        fails(f"{name} is not in your submission: hand it in beside training.py ({what})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fails(f"{name} is not UTF-8 text")
        raise


def test_lab_report(handed_in):
    """Graded by hand (``manual:`` in course.yml): this checks only the form, so the student hears of a gap early."""
    report = handed_in_text(handed_in, "report.md", "your write-up, from the template the lab writes")
    if len(report.strip()) < 300:
        fails(
            f"report.md has {len(report.strip())} characters; write at least a few paragraphs (300 characters or more)"
        )
    if "TODO" in report:
        fails("report.md still contains TODO: replace the template's TODO paragraphs with your own text")
    sections = re.split(r"^#+ ", report, flags=re.MULTILINE)
    changed = [s for s in sections if s.lower().startswith("what i changed")]
    if not changed:
        fails("report.md has no '## What I changed and why' section (keep the template's headings)")
    body = changed[0].split("\n", 1)[-1].strip()
    if len(body) < 150:
        fails(
            f"report.md: the 'What I changed and why' section has {len(body)} characters; say what you changed, why, "
            "and what it did to the validation loss (150 characters or more)"
        )


def test_lab_loss_curve(handed_in):
    """The plot decodes (every row of it, not just the header) and looks like a plot: a background and some ink."""
    from PIL import Image  # matplotlib's own PNG reader

    data = handed_in("loss_curve.png")
    if data is None:
        fails("loss_curve.png is not in your submission: hand in the plot the lab writes")
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33 or data[12:16] != b"IHDR":
        fails("loss_curve.png is not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    if width < 200 or height < 150:
        fails(f"loss_curve.png is {width} x {height} pixels; the plot should be at least 200 x 150")
    if width > 8000 or height > 8000:
        fails(f"loss_curve.png is {width} x {height} pixels; the plot the lab writes is about 770 x 460")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()  # decodes the pixel data: a header with nothing (or garbage) after it fails here
            pixels = image.convert("RGB")
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError ...
        fails(f"loss_curve.png does not decode as a PNG image ({type(exc).__name__}: {str(exc)[:120]})")
        raise
    colours = pixels.getcolors(maxcolors=1 << 16)
    total = width * height
    if colours is None:
        fails("loss_curve.png has more than 65536 colours: hand in the plot the lab writes, not a photograph")
        raise AssertionError
    background = max(count for count, _ in colours)
    if len(colours) < 2 or background > total * 0.998:
        fails("loss_curve.png is a blank image: hand in the plot the lab writes")
    if background < total * 0.3:
        fails("loss_curve.png has no background colour: it does not look like a plot of the loss curves")


def read_train_log(handed_in) -> list[dict[str, float]]:
    text = handed_in_text(handed_in, "train_log.csv", "the log the lab writes: step,train_loss,val_loss")
    reader = csv.DictReader(io.StringIO(text))
    columns = {"step", "train_loss", "val_loss"}
    if reader.fieldnames is None or not columns <= set(reader.fieldnames):
        fails(f"train_log.csv has the columns {reader.fieldnames}; expected step,train_loss,val_loss")
    rows = []
    for number_, row in enumerate(reader, start=2):
        try:
            rows.append({key: float(row[key]) for key in columns})
        except (TypeError, ValueError):
            fails(f"train_log.csv line {number_}: {row!r:.100} is not three numbers")
    return rows


class HandedInModel:
    """The handed-in checkpoint in the grader's own ``GPT``, with the loss the grader measured."""

    def __init__(self, model: torch.nn.Module, step: int, config: dict, vocab: str, loss: float) -> None:
        self.model, self.step, self.config, self.vocab, self.loss = model, step, config, vocab, loss


_CHECKPOINTS: dict[str, HandedInModel | str] = {}  # sha256 of the last file read -> what it holds, or why refused


def checked_archive(data: bytes) -> None:
    """Refuse what ``torch.save`` does not write before unpickling: other formats, compressed records, huge pickles."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            records = archive.infolist()
    except zipfile.BadZipFile:
        fails("checkpoint.pt is not a torch.save file (a zip archive): save it with save_checkpoint, torch.save")
    if any(info.compress_type != zipfile.ZIP_STORED for info in records):
        fails("checkpoint.pt has compressed records; torch.save writes them uncompressed: save it with torch.save")
    if sum(info.file_size for info in records) > len(data):
        fails("checkpoint.pt is not a plain torch.save file (its records claim more bytes than it holds)")
    if sum(info.file_size for info in records if info.filename.endswith(".pkl")) > MAX_CHECKPOINT_PICKLE:
        fails("checkpoint.pt holds more than 8 MB of non-tensor data; save the dict save_checkpoint describes")


def checked_config(config) -> dict:
    """``GPT``'s keyword arguments, each of a sane type and size."""
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        fails(f"checkpoint.pt's 'config' is {type(config).__name__}, expected a dict of GPT's keyword arguments")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        fails(f"checkpoint.pt's 'config' has keys GPT does not take: {', '.join(unknown)[:120]}")
    for key, most in CONFIG_INTS.items():
        value = config.get(key)
        if value is None and key == "d_ff":
            continue
        if type(value) is not int or not 1 <= value <= most:
            fails(f"checkpoint.pt's config[{key!r}] is {value!r:.40}; expected a whole number from 1 to {most}")
    for key, low, high in (("dropout", 0.0, 1.0), ("eps", 1e-12, 1.0)):
        value = config.get(key, low if key == "dropout" else 1e-5)
        if type(value) not in (int, float) or not low <= value < high:
            fails(f"checkpoint.pt's config[{key!r}] is {value!r:.40}; expected a number in [{low:g}, {high:g})")
    if config["d_model"] % config["n_heads"]:
        fails("checkpoint.pt's config: d_model is not a multiple of n_heads")
    if config["max_len"] < 16:
        fails(f"checkpoint.pt's config: max_len is {config['max_len']}; the lab's context is 64 characters")
    return dict(config)


def held_out_loss(model: torch.nn.Module, vocab: str, context: int) -> float:
    """Mean next-character loss on the held-out passages, in windows of ``context`` characters."""
    lookup = {char: i for i, char in enumerate(vocab)}
    ids = torch.tensor([lookup[char] for char in HELD_OUT], dtype=torch.long)
    usable = len(ids) // context * context
    windows = ids[:usable].view(-1, context)
    total = 0.0
    with torch.no_grad():
        for chunk in windows.split(4):  # a few windows at a time: bounded memory for the attention scores
            logits = model(chunk)
            total += float(
                F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), chunk[:, 1:].flatten(), reduction="sum")
            )
    return total / windows[:, 1:].numel()


def load_handed_in_checkpoint(data: bytes, reference) -> HandedInModel:
    """checkpoint.pt's weights in ``reference.GPT``: read here as plain tensors, never through the student's code."""
    checked_archive(data)
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # weights_only refuses anything but tensors, numbers, strings and containers
        fails(
            f"checkpoint.pt cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: "
            f"{str(exc)[:160]}); save plain tensors, numbers, strings, lists and dicts only"
        )
    if not isinstance(state, dict):
        fails(f"checkpoint.pt holds {type(state).__name__}, expected the dict save_checkpoint writes")
    weights, step, vocab = state.get("model"), state.get("step"), state.get("vocab")
    config = checked_config(state.get("config"))
    if type(step) is not int or step < 0:
        fails(f"checkpoint.pt's 'step' is {step!r:.40}, expected the number of steps trained (an int)")
    if not isinstance(vocab, str) or len(vocab) != config["vocab_size"] or len(set(vocab)) != len(vocab):
        fails("checkpoint.pt's 'vocab' is not a string of vocab_size different characters (in id order)")
    missing = sorted(set(HELD_OUT) - set(vocab))
    if missing:
        fails(f"checkpoint.pt's vocabulary lacks {''.join(missing)!r}: train on tinyshakespeare.txt")
    if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
        fails("checkpoint.pt's 'model' is not a state dict (parameter names -> tensors)")
    try:
        with torch.device("meta"):  # shapes without memory: a config describing a huge model costs nothing
            shapes = {name: tuple(value.shape) for name, value in reference.GPT(**config).state_dict().items()}
    except Exception as exc:
        fails(f"GPT(**checkpoint.pt's config) cannot be built ({type(exc).__name__}: {str(exc)[:160]})")
        raise
    if sum(math.prod(shape) for shape in shapes.values()) > MAX_PARAMETERS:
        fails(f"checkpoint.pt's config describes a model of more than {MAX_PARAMETERS:,} parameters")
    if set(weights) != set(shapes):
        extra, absent = sorted(set(weights) - set(shapes)), sorted(set(shapes) - set(weights))
        fails(
            f"checkpoint.pt's state dict does not fit GPT(**config): unexpected {', '.join(extra[:4]) or 'none'}; "
            f"missing {', '.join(absent[:4]) or 'none'}"
        )
    for name, value in weights.items():
        if (
            type(value) not in (torch.Tensor, torch.nn.Parameter)
            or value.layout != torch.strided
            or value.is_quantized
            or not value.is_floating_point()
            or tuple(value.shape) != shapes[name]
        ):
            fails(f"checkpoint.pt's {name!r} is not a floating-point tensor of shape {shapes[name]}")
    try:
        model = reference.GPT(**config)
        model.load_state_dict(weights, strict=True)
    except Exception as exc:
        fails(f"checkpoint.pt's weights do not load into GPT(**config) ({type(exc).__name__}: {str(exc)[:160]})")
        raise
    model.eval()
    loss = held_out_loss(model, vocab, min(config["max_len"], EVAL_CONTEXT))
    return HandedInModel(model, step, config, vocab, loss)


def handed_in_model(handed_in, reference) -> HandedInModel:
    """The handed-in checkpoint, read once per file (the log's test and the checkpoint's both need it)."""
    data = handed_in("checkpoint.pt")
    if data is None:
        fails("checkpoint.pt is not in your submission: hand in the checkpoint the lab writes")
    key = hashlib.sha256(data).hexdigest()
    if key not in _CHECKPOINTS:
        _CHECKPOINTS.clear()  # one submission's at a time
        try:
            _CHECKPOINTS[key] = load_handed_in_checkpoint(data, reference)
        except CheckFailed as exc:
            _CHECKPOINTS[key] = str(exc)
    found = _CHECKPOINTS[key]
    if isinstance(found, str):
        fails(found)
        raise AssertionError
    return found


def test_lab_train_log(handed_in, reference):
    rows = read_train_log(handed_in)
    if len(rows) < 3:
        fails(
            f"train_log.csv has {len(rows)} rows; log the validation loss at least three times (the lab logs every eval_interval steps)"
        )
    steps = [row["step"] for row in rows]
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        fails("train_log.csv: the steps do not increase from row to row")
    val = [row["val_loss"] for row in rows]
    if not all(math.isfinite(v) for v in val):
        fails("train_log.csv: some validation losses are not finite")
    if not val[-1] < val[0] - 0.5:
        fails(
            f"train_log.csv: the validation loss goes from {val[0]:.3f} to {val[-1]:.3f}; it should fall by more than 0.5 overall"
        )
    if not val[-1] < FINAL_VAL_LOSS:
        fails(
            f"train_log.csv: the final validation loss is {val[-1]:.3f} nats per character; train until it is below "
            f"{FINAL_VAL_LOSS} (nanoGPT's CPU baseline reaches about 1.88)"
        )
    # The log is the record of the run whose checkpoint was handed in: the same last step, the same loss.
    try:
        handed = handed_in_model(handed_in, reference)
    except CheckFailed as exc:
        fails(f"train_log.csv is checked against your checkpoint.pt, which the grader cannot use: {exc}")
        raise
    if steps[-1] != handed.step:
        fails(
            f"train_log.csv ends at step {steps[-1]:g} but checkpoint.pt was saved at step {handed.step}: hand in the "
            "log and the checkpoint of the same run (the lab writes both at every evaluation)"
        )
    if abs(val[-1] - handed.loss) > LOG_TOLERANCE:
        fails(
            f"train_log.csv ends with a validation loss of {val[-1]:.3f}, but the model in your checkpoint.pt has "
            f"{handed.loss:.3f} on passages of the validation split (the grader's measurement; a lab run's two agree "
            f"within {LOG_TOLERANCE}): hand in the log and the checkpoint of the same run"
        )


def test_lab_checkpoint_samples(handed_in, reference):
    """The checkpoint's weights, in the grader's GPT: a trained model's loss on held-out text, and a sample."""
    handed = handed_in_model(handed_in, reference)
    if not handed.loss < HELD_OUT_LOSS:
        fails(
            f"the model in your checkpoint.pt has a loss of {handed.loss:.3f} nats per character on passages of the "
            f"validation split; a trained model is below {HELD_OUT_LOSS}. Hand in the checkpoint of your final run"
        )
    text = reference.generate_text(handed.model, handed.vocab, SAMPLE_PROMPT, 40, 0.8, 3)
    if len(text) != len(SAMPLE_PROMPT) + 40 or not set(text) <= set(handed.vocab) | set(SAMPLE_PROMPT):
        fails(f"a sample from the model in your checkpoint.pt went wrong: {text!r:.120}")


# A short seeded run of the student's own training code: 20 steps of configure_optimizer and train_step
# (clipping at 1) on a tiny float64 GPT, from the same weights and batches as the reference's. float64: the
# two runs agree to ~1e-12 whatever the summation order, so the losses are compared at rtol 1e-6.
RUN_STEPS = 20
RUN_TEXT = HELD_OUT_PASSAGES[0]
RUN_VOCAB = "".join(sorted(set(RUN_TEXT)))
RUN_CONFIG = {
    "vocab_size": len(RUN_VOCAB),
    "max_len": 24,
    "d_model": 16,
    "n_heads": 2,
    "n_layers": 1,
    "d_ff": 32,
    "dropout": 0.0,
    "eps": 1e-5,
}


def run_batches(seed: int, batch: int = 8) -> list[torch.Tensor]:
    ids = torch.tensor([RUN_VOCAB.index(char) for char in RUN_TEXT], dtype=torch.long)
    length = RUN_CONFIG["max_len"]
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(RUN_STEPS):
        starts = torch.randint(len(ids) - length + 1, (batch,), generator=generator)
        batches.append(torch.stack([ids[s : s + length] for s in starts.tolist()]))
    return batches


def test_lab_training_run(student, reference):
    state = gpt_state(reference, seed=300, std=0.02, config=RUN_CONFIG)
    ref = reference.GPT(**RUN_CONFIG).double()
    ref.load_state_dict(state)
    ref.train()
    mine = student.GPT(**RUN_CONFIG)
    mine.double()
    mine.load_state_dict(state)
    mine.train()
    ref_optimizer = reference.configure_optimizer(ref, 1e-2, 0.1, (0.9, 0.99))
    my_optimizer = student.configure_optimizer(mine, 1e-2, 0.1, (0.9, 0.99))
    want, got = [], []
    for step, batch in enumerate(run_batches(seed=301)):
        want.append(reference.train_step(ref, ref_optimizer, batch, max_norm=1.0)["loss"])
        result = student.train_step(mine, my_optimizer, batch, max_norm=1.0)
        if not isinstance(result, dict) or "loss" not in result:
            fails(
                f"train_step at step {step} of a short training run returned {type(result).__name__}, expected a dict"
            )
        got.append(number(result["loss"], name=f"train_step's 'loss' at step {step}"))
    assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor(want, dtype=torch.float64),
        name=f"the losses of {RUN_STEPS} train_steps (configure_optimizer(model, 1e-2, 0.1, (0.9, 0.99)), "
        "max_norm=1.0, float64) from the same weights and batches as the reference",
        rtol=1e-6,  # float64 runs of different summation orders agree to ~1e-12 after 20 steps
        atol=1e-9,
    )
    # The trained weights, measured here in the grader's own GPT: the run must have trained it.
    trained = reference.GPT(**RUN_CONFIG).double()
    weights = mine.state_dict()
    if not isinstance(weights, dict) or set(weights) != set(state):
        fails("the model's state_dict() after training does not have GPT's parameter names")
    trained.load_state_dict({name: expect_tensor(weights[name], name=name) for name in state})
    trained.eval()
    ids = torch.stack(run_batches(seed=302, batch=16)[:2]).flatten(0, 1)
    with torch.no_grad():
        before = F.cross_entropy(ref_start(reference, state)(ids)[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        after = F.cross_entropy(trained(ids)[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    if not float(after) < float(before) - 0.5:
        fails(
            f"after {RUN_STEPS} train_steps the model's loss went from {float(before):.3f} to {float(after):.3f} "
            "(measured by the grader); the reference's falls by more than 0.5"
        )


def ref_start(reference, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = reference.GPT(**RUN_CONFIG).double()
    model.load_state_dict(state)
    return model.eval()
