"""Support code for the hidden tests (``autograder/hidden/NN-slug/test_*.py``).

What two or more weeks' hidden tests need alike lives here, once: the dtypes they run in and
their pytest ids, the looser float32 tolerance of whole-model comparisons, ``fails``, the
padding masks, seeded token ids, reading a student's number, expecting a ``ValueError`` and
each week's forbidden ops (``forbidden:`` in course.yml). A week's own fixtures are in its
folder's ``conftest.py``; helpers that only week 10's files share are at the end of this module.

It imports only torch, the standard library and the engine's leaf modules (checks, config,
inputs, student_errors), so that it stays importable while the grading engine changes around it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from autograder.checks import CheckFailed
from autograder.config import load
from autograder.inputs import randn
from autograder.student_errors import StudentException

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["fp32", "fp64"]
DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64"}

# Whole-model float32 results differ between processes in the last bits (matmul blocking and
# thread count change the summation order), and outputs reach ~15 to ~30: allow 1e-4 absolute.
LOOSE = {"rtol": 1e-5, "atol": 1e-4}


def fails(message: str, mistake: str | None = None) -> None:
    """Fail the test with ``message`` (what the student sees); ``mistake``: the known mistake recognised, if any."""
    raise CheckFailed(message, mistake)


@functools.cache
def _forbidden(week_id: str) -> tuple[str, ...]:
    return load().week(week_id).all_forbidden


def forbidden(week_id: str) -> list[str]:
    """The op patterns (fnmatch, for ``assert_no_forbidden_ops``) week ``week_id`` may not call:
    its ``forbidden:`` in course.yml with what it inherits."""
    return list(_forbidden(week_id))


def number(value: Any, *, name: str) -> float:
    """A Python number (or a one-element tensor) from the student, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        fails(f"{name}: expected a number, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            fails(f"{name}: expected a number, got a tensor of shape {tuple(value.shape)}")
        return float(value.double().item())
    return float(value)


def raises_value_error(call: Callable[[], object], label: str) -> None:
    """Fail unless ``call()`` (into the student's code) raises ``ValueError``."""
    try:
        call()
    except StudentException as exc:
        if "raised ValueError" not in str(exc):
            raise CheckFailed(f"{label} should raise ValueError; instead {exc}") from None
        return
    raise CheckFailed(f"{label} returned normally; it should raise ValueError")


def token_ids(batch: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    """Seeded ``(batch, length)`` int64 ids in ``[0, vocab)``."""
    return torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def real_tokens(lengths: list[int], length: int) -> torch.Tensor:
    """``(B, T)`` bool, True = a real token, the padding on the right."""
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


def key_padding(lengths: list[int], length: int) -> torch.Tensor:
    """``(B, 1, 1, T)`` bool, True = a real key (the padding on the right)."""
    return real_tokens(lengths, length)[:, None, None, :]


def left_padded(lengths: list[int], length: int) -> torch.Tensor:
    """``(B, T)`` int64 attention mask, 1 = real token, the padding on the left."""
    return (torch.arange(length)[None, :] >= length - torch.tensor(lengths)[:, None]).long()


def right_padded(lengths: list[int], length: int) -> torch.Tensor:
    """``(B, T)`` int64 attention mask, 1 = real token, the padding on the right."""
    return real_tokens(lengths, length).long()


# -- shared by week 10's files (training) ---------------------------------------------------------------

# A tiny GPT: 61 tokens, 24 positions, 2 layers of width 32 with 4 heads and d_ff 48; dropout 0.1
# (the models are in eval mode, so it must do nothing).
TRAINING_CONFIG = {
    "vocab_size": 61,
    "max_len": 24,
    "d_model": 32,
    "n_heads": 4,
    "n_layers": 2,
    "d_ff": 48,
    "dropout": 0.1,
    "eps": 1e-5,
}
TRAINING_LENGTH = 19
TRAINING_LENGTHS = [19, 12, 5]  # right padding: rows of 19, 12 and 5 real tokens


def gpt_state(reference: Any, seed: int, std: float, config: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Random float64 weights under GPT's names: std ``std``; LayerNorm weights 1 + std N(0, 1)."""
    model = reference.GPT(**(config or TRAINING_CONFIG))
    state = {}
    for i, (name, value) in enumerate(model.state_dict().items()):
        is_norm_weight = "norm" in name and name.endswith("weight")
        state[name] = randn(*value.shape, seed=seed + i, scale=std) + (1.0 if is_norm_weight else 0.0)
    return state


def build_gpt(
    student: Any,
    reference: Any,
    dtype: torch.dtype,
    seed: int,
    std: float = 0.5,
    config: dict[str, Any] | None = None,
) -> tuple[torch.nn.Module, Any]:
    """The reference GPT and the student's, with the same weights, both in eval mode."""
    config = config or TRAINING_CONFIG
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


def parameter_grads(ref: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    """Parameter name -> the gradient of ``loss`` (the reference side)."""
    names, params = zip(*ref.named_parameters(), strict=True)
    return dict(zip(names, torch.autograd.grad(loss, params), strict=True))


def student_grads(
    student: Any, module: Any, expected: dict[str, torch.Tensor], *, name: str
) -> dict[str, torch.Tensor]:
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


def remote_net(student: Any, dtype: torch.dtype, seed: int, grad_scale: float) -> tuple[Any, Any]:
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


# The tiny BERT of week 05's tests (transformers' BertConfig(vocab_size=99, hidden_size=32,
# num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
# layer_norm_eps=1e-12) in the course's arguments); week 11 fine-tunes the same model.
BERT_CONFIG = {
    "vocab_size": 99,
    "d_model": 32,
    "n_layers": 2,
    "n_heads": 4,
    "d_ff": 37,
    "max_len": 64,
    "type_vocab_size": 2,
    "dropout": 0.1,
    "eps": 1e-12,
}
