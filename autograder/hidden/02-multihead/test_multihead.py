"""Hidden tests for week 02 (multi-head, cross, multi-query and grouped-query attention).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader, with the same weights loaded into the student's module by name;
``tests/test_week02_reference.py`` checks that reference against
``torch.nn.MultiheadAttention`` and ``F.scaled_dot_product_attention(enable_gqa=True)``.
"""

from __future__ import annotations

import pytest
import torch

from autograder import assert_close, assert_no_forbidden_ops, expect_sequence, randn, reference_grads
from autograder.student_errors import StudentException
from autograder.testing import DTYPE_NAMES, DTYPES, forbidden

FORBIDDEN = forbidden("02-multihead")
# (d_model, n_heads, n_kv_heads, d_head): MHA, GQA with 2 and 3 groups, MQA; head sizes not d_model / n_heads.
CONFIGS = {
    "mha": (24, 4, None, None),
    "gqa-6q-2kv": (40, 6, 2, 12),
    "gqa-6q-3kv": (40, 6, 3, 12),
    "mqa-6q-1kv": (40, 6, 1, 12),
}


def build(student, reference, config: str, dtype: torch.dtype, seed: int = 0, bias: bool = True):
    """The reference module with non-trivial weights (std 0.5), and the student's with the same weights.

    The student's module gets them with a strict load_state_dict: a missing, extra or differently
    shaped parameter fails the test there.
    """
    d_model, n_heads, n_kv_heads, d_head = CONFIGS[config]
    ref = reference.MultiHeadAttention(d_model, n_heads, n_kv_heads=n_kv_heads, d_head=d_head, bias=bias).to(dtype)
    state = {
        name: randn(*p.shape, dtype=dtype, seed=seed + i, scale=0.5)
        for i, (name, p) in enumerate(ref.state_dict().items())
    }
    ref.load_state_dict(state)
    mine = student.MultiHeadAttention(d_model, n_heads, n_kv_heads=n_kv_heads, d_head=d_head, bias=bias)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    return ref, mine, d_model


def check_pair(result, expected, label, mistakes=None):
    output, weights = expect_sequence(result, 2, name=label, hint="forward returns (output, weights)")
    # Whole-module float32 results differ between processes in the last bits (matmul blocking and
    # thread count change the summation order), and outputs reach ~40 here: allow 1e-4 absolute.
    loose = {"rtol": 1e-5, "atol": 1e-4} if expected[0].dtype == torch.float32 else {}
    assert_close(
        weights,
        expected[1],
        name=f"{label}: weights (B, H, Tq, Tk)",
        mistakes=mistakes,
        hint="scale by 1/sqrt(d_head); query head h uses key/value head h // (n_heads // n_kv_heads)",
        **loose,
    )
    assert_close(
        output,
        expected[0],
        name=f"{label}: output (B, Tq, d_model)",
        hint="merge the heads back (transpose before reshape) and apply out_proj",
        **loose,
    )


# -- helpers -----------------------------------------------------------------


@pytest.mark.parametrize("n_heads", [1, 3, 4])
def test_split_heads(student, reference, n_heads):
    x = randn(2, 5, n_heads * 6, seed=1)
    expected = reference.split_heads(x, n_heads)
    assert_close(
        student.split_heads(x, n_heads),
        expected,
        name=f"split_heads(x of shape {tuple(x.shape)}, n_heads={n_heads})",
        mistakes={
            "a plain view to (B, H, T, Dh) mixes positions and heads; view as (B, T, H, Dh) then transpose": x.reshape(
                2, n_heads, 5, 6
            )
        },
        hint="view as (B, T, n_heads, Dh), then transpose dims 1 and 2",
    )


def test_merge_heads_inverts_split(student, reference):
    x = randn(2, 3, 5, 7, seed=2)
    assert_close(
        student.merge_heads(x),
        reference.merge_heads(x),
        name="merge_heads(x of shape (2, 3, 5, 7))",
        mistakes={"a plain reshape of (B, H, T, Dh) mixes positions and heads; transpose first": x.reshape(2, 5, 21)},
        hint="transpose back to (B, T, H, Dh), then reshape to (B, T, H * Dh)",
    )


@pytest.mark.parametrize("n_rep", [1, 2, 3])
def test_repeat_kv(student, reference, n_rep):
    x = randn(2, 2, 4, 5, seed=3)
    assert_close(
        student.repeat_kv(x, n_rep),
        reference.repeat_kv(x, n_rep),
        name=f"repeat_kv(x with 2 heads, n_rep={n_rep})",
        mistakes={
            "heads tiled (repeat) instead of each repeated in a row (repeat_interleave)": x.repeat(1, n_rep, 1, 1)
        },
        hint="head h of the result is input head h // n_rep",
    )


# -- the module ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_self_attention_with_padding(student, reference, config, dtype):
    ref, mine, d_model = build(student, reference, config, dtype, seed=10)
    x = randn(3, 7, d_model, dtype=dtype, seed=20)
    lengths = torch.tensor([7, 4, 2])
    mask = (torch.arange(7)[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, Tk)
    label = f"{config} self-attention, lengths {lengths.tolist()}, {DTYPE_NAMES[dtype]}"
    check_pair(mine(x, mask=mask), ref(x, mask=mask), label)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_causal_self_attention(student, reference, config):
    ref, mine, d_model = build(student, reference, config, torch.float64, seed=30)
    x = randn(2, 9, d_model, seed=31)
    mask = torch.ones(9, 9, dtype=torch.bool).tril()
    check_pair(mine(x, mask=mask), ref(x, mask=mask), f"{config} causal self-attention")


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("config", ["mha", "gqa-6q-2kv"])
def test_cross_attention(student, reference, config, dtype):
    ref, mine, d_model = build(student, reference, config, dtype, seed=40)
    x = randn(2, 3, d_model, dtype=dtype, seed=41)
    context = randn(2, 6, d_model, dtype=dtype, seed=42)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])[:, None, None, :]  # padding on the context
    label = f"{config} cross-attention (Tq=3, Tk=6), {DTYPE_NAMES[dtype]}"
    check_pair(mine(x, context=context, mask=mask), ref(x, context=context, mask=mask), label)


@pytest.mark.parametrize("config", ["mha", "gqa-6q-2kv"])
def test_without_bias(student, reference, config):
    """bias=False: none of the four projections has a bias (the strict load fails on an extra one)."""
    ref, mine, d_model = build(student, reference, config, torch.float64, seed=45, bias=False)
    x = randn(2, 5, d_model, seed=46)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    check_pair(mine(x, mask=mask), ref(x, mask=mask), f"{config} with bias=False, causal self-attention")


def test_per_head_mask(student, reference):
    """A mask of the full shape (B, H, Tq, Tk), different in every query head of a group."""
    ref, mine, d_model = build(student, reference, "gqa-6q-2kv", torch.float64, seed=47)
    x = randn(2, 5, d_model, seed=48)
    mask = torch.rand(2, 6, 5, 5, generator=torch.Generator().manual_seed(49)) > 0.4
    mask[..., 0] = True  # every query sees at least one key
    check_pair(mine(x, mask=mask), ref(x, mask=mask), "gqa-6q-2kv self-attention with a per-head (B, H, Tq, Tk) mask")


@pytest.mark.parametrize(("n_heads", "n_kv_heads"), [(6, 4), (8, 3), (4, 8)])
def test_rejects_kv_heads_not_dividing(student, n_heads, n_kv_heads):
    label = f"MultiHeadAttention(48, {n_heads}, n_kv_heads={n_kv_heads}, d_head=8)"
    try:
        student.MultiHeadAttention(48, n_heads, n_kv_heads=n_kv_heads, d_head=8)
    except StudentException as exc:
        if "raised ValueError" not in str(exc):
            raise AssertionError(f"{label} should raise ValueError; instead {exc}") from None
        return
    raise AssertionError(
        f"{label} returned normally; it should raise ValueError (n_kv_heads must divide n_heads)\n"
        "Hint: check n_heads % n_kv_heads in __init__ and raise ValueError (not assert)"
    )


def test_fully_masked_rows_give_zeros(student, reference):
    ref, mine, d_model = build(student, reference, "gqa-6q-3kv", torch.float64, seed=50)
    x = randn(2, 4, d_model, seed=51)
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    mask[1, :, 2] = False
    check_pair(mine(x, mask=mask), ref(x, mask=mask), "attention with a fully masked query row")


@pytest.mark.parametrize("config", ["mha", "gqa-6q-2kv"])
def test_gradients(student, reference, config):
    ref, mine, d_model = build(student, reference, config, torch.float64, seed=60)
    x = randn(2, 5, d_model, seed=61).requires_grad_()
    context = randn(2, 3, d_model, seed=62).requires_grad_()
    grad_output = randn(2, 5, d_model, seed=63)
    (_, _), grads = mine.vjp(x, context, grad_outputs=(grad_output, None))
    expected_out, _ = ref(x, context)
    expected = reference_grads(expected_out, [x, context, *ref.parameters()], grad_output)
    hint = "keep everything differentiable: no .detach(), no .item(), no in-place edits of inputs"
    assert_close(grads[0], expected[0], name=f"{config}: gradient with respect to x", hint=hint)
    assert_close(grads[1], expected[1], name=f"{config}: gradient with respect to context", hint=hint)
    for (name, _), want in zip(ref.named_parameters(), expected[2:], strict=True):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(got.attr("grad").fetch(), want, name=f"{config}: gradient of {name}", hint=hint)


def test_gradients_with_fully_masked_rows(student, reference):
    """Fully masked query rows give zero output through attention and no NaN in any gradient."""
    ref, mine, d_model = build(student, reference, "gqa-6q-3kv", torch.float64, seed=65)
    x = randn(2, 4, d_model, seed=66).requires_grad_()
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool).tril()
    mask[1, :, 1:3] = False  # queries 1 and 2 of batch 1 see nothing
    grad_output = randn(2, 4, d_model, seed=67)
    (_, _), grads = mine.vjp(x, None, mask, grad_outputs=(grad_output, None))
    expected_out, _ = ref(x, None, mask)
    expected = reference_grads(expected_out, [x, *ref.parameters()], grad_output)
    hint = (
        "a NaN that the forward pass throws away (nan_to_num, torch.where) still reaches the gradients when the "
        "mask is added as a float -inf bias; fill the masked scores with -inf (masked_fill) before the softmax"
    )
    assert_close(grads[0], expected[0], name="gradient with respect to x, with fully masked query rows", hint=hint)
    for (name, _), want in zip(ref.named_parameters(), expected[1:], strict=True):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(
            got.attr("grad").fetch(), want, name=f"gradient of {name}, with fully masked query rows", hint=hint
        )


def test_uses_no_fused_attention(student, reference):
    ref, mine, d_model = build(student, reference, "gqa-6q-2kv", torch.float32, seed=70)
    x = randn(2, 4, d_model, dtype=torch.float32, seed=71)
    result = mine(x)
    assert_no_forbidden_ops(
        student.last_ops,
        FORBIDDEN,
        name="MultiHeadAttention.forward",
        hint="compute the scores, softmax and weighted sum yourself",
    )
    check_pair(result, ref(x), "gqa-6q-2kv self-attention")


# -- what GQA and MQA save ----------------------------------------------------


@pytest.mark.parametrize(
    ("d_model", "n_kv_heads", "d_head", "bias"),
    [(4096, 32, 128, False), (4096, 8, 128, False), (40, 3, 12, True), (40, 1, 12, True)],
)
def test_kv_param_count(student, reference, d_model, n_kv_heads, d_head, bias):
    got = student.kv_param_count(d_model, n_kv_heads, d_head, bias=bias)
    want = reference.kv_param_count(d_model, n_kv_heads, d_head, bias=bias)
    assert type(got) is int, (
        f"kv_param_count({d_model}, {n_kv_heads}, {d_head}, bias={bias}) returned {got!r} of type "
        f"{type(got).__name__}, not an int\nHint: a count is an exact Python int; avoid / and float factors"
    )
    assert got == want, (
        f"kv_param_count({d_model}, {n_kv_heads}, {d_head}, bias={bias}) is {got!r}, expected {want}\nHint: K and V each have a weight of n_kv_heads * d_head rows and d_model columns, plus a bias"
    )


@pytest.mark.parametrize(
    ("n_layers", "n_kv_heads", "d_head", "nbytes"),
    [(32, 32, 128, 2), (32, 8, 128, 2), (32, 1, 128, 2), (12, 12, 64, 4)],
)
def test_kv_cache_bytes_per_token(student, reference, n_layers, n_kv_heads, d_head, nbytes):
    got = student.kv_cache_bytes_per_token(n_layers, n_kv_heads, d_head, bytes_per_value=nbytes)
    want = reference.kv_cache_bytes_per_token(n_layers, n_kv_heads, d_head, bytes_per_value=nbytes)
    assert type(got) is int, (
        f"kv_cache_bytes_per_token({n_layers}, {n_kv_heads}, {d_head}, {nbytes}) returned {got!r} of type "
        f"{type(got).__name__}, not an int\nHint: a byte count is an exact Python int; avoid / and float factors"
    )
    assert got == want, (
        f"kv_cache_bytes_per_token({n_layers}, {n_kv_heads}, {d_head}, {nbytes}) is {got!r}, expected {want}\nHint: the cache holds keys and values for every layer and key/value head"
    )
