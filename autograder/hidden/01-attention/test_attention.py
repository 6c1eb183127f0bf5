"""Hidden tests for week 01 (attention and masking).

Expected values come from the reference solution (``reference``) run here, in
the trusted grader; ``tests/test_week01_reference.py`` checks that reference
against PyTorch's own ops in float64. ``student`` calls run in the sandboxed
worker. Points per test live in course.yml.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import (
    assert_close,
    assert_equal,
    assert_no_forbidden_ops,
    expect_sequence,
    randn,
    reference_grads,
)
from autograder.testing import DTYPES, forbidden

# Torch function names as the worker records them: softmax, log_softmax, _softmax.default, special_softmax, ...
FORBIDDEN_SOFTMAX = ["*softmax*"]
FORBIDDEN_ATTENTION = forbidden("01-attention")
SDPA_HINT = "scores = q @ kᵀ / sqrt(d) with d = q.size(-1); softmax over the last dim (keys); output = weights @ v."


def naive_weights(
    q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None, *, scale: bool = True, dim: int = -1
) -> torch.Tensor:
    """Attention weights computed the textbook way, used to name a student's mistake."""
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim).nan_to_num(0.0)  # fully masked rows: zeros, as the course asks


# -- softmax -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize(
    ("shape", "dim"), [((7,), -1), ((3, 5), -1), ((2, 3, 9), 1), ((4, 6), 0)], ids=["1d", "2d", "3d-dim1", "2d-dim0"]
)
def test_softmax_values(student, reference, shape, dim, dtype):
    x = randn(*shape, dtype=dtype, seed=1, scale=3.0)
    result = student.softmax(x, dim=dim)
    wrong_dim = 0 if dim in (-1, len(shape) - 1) else -1
    assert_close(
        result,
        reference.softmax(x, dim=dim),
        name=f"softmax(x of shape {shape}, dim={dim}) in {dtype}",
        mistakes={f"normalising over dim {wrong_dim} instead of dim {dim}": torch.softmax(x, dim=wrong_dim)},
        hint="exponentiate x minus its max along `dim`, then divide by the sum along the same `dim` (keepdim=True).",
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
def test_softmax_large_logits(student, reference, dtype):
    x = randn(4, 11, dtype=dtype, seed=2, scale=1e4)
    x[0, 3] = 1e4 if dtype == torch.float32 else 1e300
    assert_close(
        student.softmax(x),
        reference.softmax(x),
        name=f"softmax of logits around 1e4 in {dtype}",
        hint="exp(1e4) overflows to inf; subtract the max along `dim` first (softmax(x) = softmax(x - c)).",
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_softmax_half_precision(student, dtype):
    """float16/bfloat16 in, the same dtype out (exp overflows float16 above 11: the max shift matters here too)."""
    x = randn(4, 37, dtype=dtype, seed=5, scale=4.0)
    x[1, :5] = float("-inf")
    x[2] = float("-inf")
    expected = torch.softmax(x.double(), dim=-1).nan_to_num(0.0).to(dtype)  # float64 oracle, rounded once
    # A correct softmax in the input dtype rounds exp, the sum and the quotient (2-3 units of the dtype's eps);
    # exp(x - logsumexp(x)) computed in float16/bfloat16 also rounds the logsumexp (up to ~6 eps here).
    eps = torch.finfo(dtype).eps
    assert_close(
        student.softmax(x),
        expected,
        name=f"softmax of a {str(dtype).removeprefix('torch.')} tensor (logits up to ~12, a row of all -inf)",
        hint="keep x's dtype: compute in it, or compute in float32 and cast the result back to x.dtype.",
        rtol=8 * eps,
        atol=1e-5,
    )


def test_softmax_all_minus_inf_slice(student, reference):
    x = randn(3, 6, seed=3)
    x[1] = float("-inf")
    x[2, :4] = float("-inf")
    assert_close(
        student.softmax(x),
        reference.softmax(x),
        name="softmax of a row that is entirely -inf",
        hint="a row of all -inf has max -inf and x - max is NaN; such a row must come out as all zeros.",
    )


def test_softmax_does_not_call_builtin(student, reference):
    x = randn(2, 5, seed=4)
    result = student.softmax(x)
    assert_no_forbidden_ops(
        student.last_ops, FORBIDDEN_SOFTMAX, name="softmax", hint="build it from exp, amax/max and sum."
    )
    assert_close(result, reference.softmax(x), name="softmax(x)")


# -- masks -------------------------------------------------------------------


@pytest.mark.parametrize("seq_len", [1, 5, 17])
def test_causal_mask(student, reference, seq_len):
    expected = reference.causal_mask(seq_len)
    assert_equal(
        student.causal_mask(seq_len),
        expected,
        name=f"causal_mask({seq_len})",
        mistakes={
            "the mask is inverted (True must mean 'may attend')": ~expected,
            "the diagonal is missing (a position may attend to itself)": expected.tril(-1),
            "upper instead of lower triangle (query i may see keys j <= i)": expected.T.contiguous(),
        },
        hint="mask[i, j] is True when j <= i; dtype torch.bool.",
    )


@pytest.mark.parametrize(
    ("lengths", "seq_len", "int_dtype"),
    [([3, 7, 1, 0, 7], 7, torch.int64), ([2, 5, 0], 9, torch.int32)],
    ids=["full-length", "all-padded-int32"],
)
def test_padding_mask(student, reference, lengths, seq_len, int_dtype):
    lengths = torch.tensor(lengths, dtype=int_dtype)
    expected = reference.padding_mask(lengths, seq_len)
    assert_equal(
        student.padding_mask(lengths, seq_len),
        expected,
        name=f"padding_mask(lengths={lengths.tolist()} ({str(int_dtype).removeprefix('torch.')}), seq_len={seq_len})",
        mistakes={"the mask is inverted (True must mean a real token)": ~expected},
        hint="True at positions < lengths[b]; shape (batch, 1, 1, seq_len) with seq_len as given (not "
        "max(lengths)), dtype torch.bool.",
    )


# -- scaled dot-product attention ---------------------------------------------

SHAPES = {
    "single": ((5, 8), (5, 8), (5, 8)),
    "cross-Tq3-Tk7": ((3, 8), (7, 8), (7, 8)),
    "batch-heads": ((2, 3, 6, 16), (2, 3, 6, 16), (2, 3, 6, 16)),
    "dv-differs": ((2, 4, 5), (2, 9, 5), (2, 9, 3)),
}


def _attention_inputs(name: str, dtype: torch.dtype, seed: int = 10) -> tuple[torch.Tensor, ...]:
    q_shape, k_shape, v_shape = SHAPES[name]
    return (
        randn(*q_shape, dtype=dtype, seed=seed, scale=1.5),
        randn(*k_shape, dtype=dtype, seed=seed + 1, scale=1.5),
        randn(*v_shape, dtype=dtype, seed=seed + 2),
    )


def _check_attention(student_result, expected, q, k, mask, label):
    output, weights = expect_sequence(student_result, 2, name=label, hint="return (output, weights)")
    exp_output, exp_weights = expected
    mistakes = {
        "missing the 1/sqrt(d) scale on the scores": naive_weights(q, k, mask, scale=False),
        "softmax over the query dim instead of the key dim": naive_weights(q, k, mask, dim=-2),
    }
    if mask is not None:
        mistakes["the mask polarity is inverted (True = attend)"] = naive_weights(q, k, ~mask)
    assert_close(weights, exp_weights, name=f"{label} weights", mistakes=mistakes, hint=SDPA_HINT)
    assert_close(output, exp_output, name=f"{label} output", hint="output = weights @ v")


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_attention_unmasked(student, reference, shape, dtype):
    q, k, v = _attention_inputs(shape, dtype)
    label = f"attention on shapes {shape} in {dtype}"
    _check_attention(
        student.scaled_dot_product_attention(q, k, v),
        reference.scaled_dot_product_attention(q, k, v),
        q,
        k,
        None,
        label,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
def test_attention_causal_and_padding(student, reference, dtype):
    batch, heads, seq, d = 3, 2, 7, 8
    q, k, v = (randn(batch, heads, seq, d, dtype=dtype, seed=20 + i) for i in range(3))
    lengths = torch.tensor([7, 4, 1])
    mask = reference.causal_mask(seq) & reference.padding_mask(lengths, seq)  # (3, 1, 7, 7)
    label = f"causal + padding attention (lengths {lengths.tolist()}) in {dtype}"
    expected = reference.scaled_dot_product_attention(q, k, v, mask)
    _check_attention(student.scaled_dot_product_attention(q, k, v, mask=mask), expected, q, k, mask, label)


def test_attention_mask_after_softmax_is_wrong(student, reference):
    """Masking after the softmax leaves rows that no longer sum to one."""
    q, k, v = _attention_inputs("cross-Tq3-Tk7", torch.float64, seed=30)
    mask = torch.tensor([True, True, False, True, False, False, True]).expand(3, 7)
    _, weights = expect_sequence(student.scaled_dot_product_attention(q, k, v, mask), 2, name="attention")
    after = naive_weights(q, k, None) * mask
    assert_close(
        weights,
        reference.scaled_dot_product_attention(q, k, v, mask)[1],
        name="attention weights with a key mask",
        mistakes={"the mask is applied after the softmax (rows must still sum to 1)": after},
        hint="fill masked scores with -inf before the softmax.",
    )


def _far_below_scores() -> tuple[torch.Tensor, ...]:
    """float64 q, k, v, mask whose unmasked scores lie far below -1e9 and whose masked keys score far above it.

    Batch 0: scores about -1.1e12 (2^40), rows with 3, 2 and 1 unmasked keys. Batch 1: about -1.3e30 (2^100),
    one unmasked key per row. Every score is exact (integers times powers of two, d = 16), so the weights do
    not depend on summation order.
    """
    generator = torch.Generator().manual_seed(35)
    q = torch.randint(-1, 2, (2, 3, 16), generator=generator).double()
    k = torch.randint(-1, 2, (2, 5, 16), generator=generator).double()
    q[:, :, 0] = torch.tensor([2.0**40, 2.0**100])[:, None]  # the first feature sets the size of every score
    k[:, :, 0] = torch.tensor([4.0, 4.0, -4.0, -4.0, -4.0])  # keys 0, 1: about +size; keys 2-4: about -size
    v = randn(2, 5, 4, seed=36)
    blocked = [False, False]  # keys 0 and 1 (the huge positive scores) are masked in every row
    mask = torch.tensor(
        [
            [blocked + [True, True, True], blocked + [True, False, True], blocked + [False, True, False]],
            [blocked + [True, False, False], blocked + [False, False, True], blocked + [False, True, False]],
        ]
    )
    return q, k, v, mask


def test_attention_masked_scores_are_minus_inf(student, reference):
    """A masked key gets weight 0 whatever the other scores are: -1e4, -1e9 or -1e30 fills are not -inf."""
    q, k, v, mask = _far_below_scores()
    label = "attention whose unmasked scores are far below -1e9 (about -1e12 and -1e30)"
    output, weights = expect_sequence(student.scaled_dot_product_attention(q, k, v, mask), 2, name=label)
    exp_output, exp_weights = reference.scaled_dot_product_attention(q, k, v, mask)
    hint = (
        "fill masked scores with -inf (or torch.finfo(scores.dtype).min), not a big negative number such as -1e9: "
        "here every unmasked score is below -1e12, so a key filled with -1e9 would take all the weight."
    )
    # A wrong fill moves whole units of weight. A correct softmax written as exp(x - logsumexp(x)) rounds the
    # logsumexp of scores near 1e12 to 2^-13, an error of about 1e-4 in the weights: allow 1e-3.
    loose = {"rtol": 1e-3, "atol": 1e-6}
    assert_close(weights, exp_weights, name=f"{label}: weights", hint=hint, **loose)
    assert_close(output, exp_output, name=f"{label}: output", hint=hint, **loose)


def test_attention_fully_masked_rows(student, reference):
    q, k, v = _attention_inputs("batch-heads", torch.float64, seed=40)
    mask = torch.ones(2, 3, 6, 6, dtype=torch.bool)
    mask[0, :, 2] = False  # query 2 of batch 0 sees nothing
    mask[1, 1, :, 3:] = False
    mask[1, 1, 4] = False
    label = "attention where some query rows have every key masked"
    output, weights = expect_sequence(student.scaled_dot_product_attention(q, k, v, mask), 2, name=label)
    exp_output, exp_weights = reference.scaled_dot_product_attention(q, k, v, mask)
    hint = (
        "a fully masked row gives -inf everywhere and exp(-inf - (-inf)) = NaN; such rows need zero weights and output."
    )
    assert_close(weights, exp_weights, name=f"{label}: weights", hint=hint)
    assert_close(output, exp_output, name=f"{label}: output", hint=hint)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
def test_attention_large_logits(student, reference, dtype):
    q, k, v = _attention_inputs("batch-heads", dtype, seed=50)
    q = q * 300.0
    label = f"attention with scores around 1e4 in {dtype}"
    expected = reference.scaled_dot_product_attention(q, k, v)
    output, weights = expect_sequence(student.scaled_dot_product_attention(q, k, v), 2, name=label)
    hint = "use your stable softmax (subtract the row max) inside attention."
    assert_close(weights, expected[1], name=f"{label}: weights", hint=hint)
    assert_close(output, expected[0], name=f"{label}: output", hint=hint)


def test_attention_gradients(student, reference):
    q, k, v = (t.requires_grad_() for t in _attention_inputs("cross-Tq3-Tk7", torch.float64, seed=60))
    mask = reference.causal_mask(7)[4:]  # (3, 7): the last three rows of a causal mask
    grad_output = randn(3, 8, seed=61)
    (output, _), grads = student.scaled_dot_product_attention.vjp(q, k, v, mask, grad_outputs=(grad_output, None))
    expected_output, _ = reference.scaled_dot_product_attention(q, k, v, mask)
    expected_grads = reference_grads(expected_output, (q, k, v), grad_output)
    hint = "build everything from differentiable torch ops; do not detach or convert to Python numbers."
    for name, got, want in zip("qkv", grads[:3], expected_grads, strict=True):
        assert_close(got, want, name=f"gradient with respect to {name}", hint=hint)


def test_attention_gradients_fully_masked_rows(student, reference):
    """No NaN in the backward pass either: a fully masked row contributes zero gradient."""
    q, k, v = (t.requires_grad_() for t in _attention_inputs("batch-heads", torch.float64, seed=62))
    mask = torch.ones(2, 3, 6, 6, dtype=torch.bool).tril()
    mask[0, :, 2] = False  # query 2 of batch 0 sees nothing, in every head
    mask[1, 1, :, :4] = False  # head 1 of batch 1: queries 0-3 see nothing
    grad_output = randn(2, 3, 6, 16, seed=63)
    (output, _), grads = student.scaled_dot_product_attention.vjp(q, k, v, mask, grad_outputs=(grad_output, None))
    expected_output, _ = reference.scaled_dot_product_attention(q, k, v, mask)
    expected_grads = reference_grads(expected_output, (q, k, v), grad_output)
    hint = (
        "a NaN (or inf) that the forward pass throws away still reaches the gradients: torch.where and nan_to_num "
        "differentiate the discarded branch too. Fill the masked scores with -inf (masked_fill) and keep the "
        "softmax finite for an all -inf row (shift by 0, divide by 1)."
    )
    for name, got, want in zip("qkv", grads[:3], expected_grads, strict=True):
        assert_close(got, want, name=f"gradient with respect to {name} with fully masked query rows", hint=hint)


def test_attention_uses_no_builtin_attention(student, reference):
    q, k, v = _attention_inputs("single", torch.float32, seed=70)
    mask = reference.causal_mask(5)
    result = student.scaled_dot_product_attention(q, k, v, mask)
    assert_no_forbidden_ops(
        student.last_ops,
        FORBIDDEN_ATTENTION,
        name="scaled_dot_product_attention",
        hint="write it from matmul, your own softmax and masked_fill.",
    )
    _check_attention(result, reference.scaled_dot_product_attention(q, k, v, mask), q, k, mask, "causal attention")
