"""Hidden tests for week 09, part 1 (flash.py): tiled FlashAttention, sparse masks, Linformer, Performer.

Expected values come from the reference solution (``reference``) run here, in the
trusted grader, mostly its ``naive_attention`` in float64 with autograd for the
gradients; ``tests/test_week09_reference.py`` checks that reference against
``F.scaled_dot_product_attention``, gradcheck, Hugging Face's Longformer attention
and float64 formulas. Float32 results are compared with the float64 truth of the
same float32 inputs, rounded to float32.

Memory: ``traced`` calls (and ``vjp(..., trace_shapes=True)``) record the shape of
every tensor the student's code creates, forward and backward. The sizes are
chosen so that no honest tensor has both a ``Tq`` and a ``Tk`` dimension
(``Tq = 100``, ``Tk = 75``, tiles of 16, head size 32, 2 x 3 heads): a "flash"
attention that builds the score matrix, its mask or its probabilities fails.
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import (
    CheckFailed,
    assert_close,
    assert_equal,
    assert_global_rng_untouched,
    assert_no_forbidden_ops,
    assert_no_tensor_with_dims,
    expect_sequence,
    expect_tensor,
    randn,
    reference_grads,
)
from autograder.testing import DTYPE_IDS, DTYPE_NAMES, DTYPES, LOOSE, fails, forbidden

FORBIDDEN = forbidden("09-efficient")
B, H, D = 2, 3, 32
MEMORY_HINT = (
    "never build the whole score matrix (or a mask of that size): loop over key tiles, keep only the running "
    "max, sum and output of each query tile, and build each tile's causal mask from torch.arange of its rows "
    "and columns"
)

TILE_HINT = (
    "work in (block_q x block_k) tiles: stream over the key tiles with the online softmax instead of taking all "
    "the keys of a query tile at once (or all the queries of a key tile)"
)


def check_memory(student, tq: int, tk: int, bq: int, bk: int, label: str, hint: str = MEMORY_HINT) -> None:
    """No (Tq, Tk) tensor, and the scores really are tiled both ways: no (Bq, Tk) or (Tq, Bk) tensor either."""
    assert_no_tensor_with_dims(student.last_shapes, (tq, tk), name=label, hint=hint)
    assert_no_tensor_with_dims(student.last_shapes, (bq, tk), name=label, hint=TILE_HINT)
    assert_no_tensor_with_dims(student.last_shapes, (tq, bk), name=label, hint=TILE_HINT)


def qkv(tq: int, tk: int, dtype: torch.dtype, seed: int, d: int = D, scale: float = 1.0):
    return (
        randn(B, H, tq, d, dtype=dtype, seed=seed, scale=scale),
        randn(B, H, tk, d, dtype=dtype, seed=seed + 1, scale=scale),
        randn(B, H, tk, d, dtype=dtype, seed=seed + 2),
    )


def truth(reference, q, k, v, causal):
    """(out, lse) in float64 from the same inputs, then in the inputs' dtype."""
    out, lse = reference.naive_attention(q.double(), k.double(), v.double(), causal)
    return out.to(q.dtype), lse.to(q.dtype)


def dense_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return q.double() @ k.double().transpose(-2, -1) / math.sqrt(q.size(-1))


def attend(scores: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None = None):
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    return torch.exp(scores - lse[..., None]) @ v.double(), lse


def tiled_variant(q, k, v, causal: bool, block_q: int, block_k: int, bug: str):
    """What a tiled forward with a known bug returns, in float64: ``(out, lse)``."""
    q, k, v = q.double(), k.double(), v.double()
    seq_q, seq_k = q.size(-2), k.size(-2)
    outs, lses = [], []
    for i0 in range(0, seq_q, block_q):
        i1 = min(i0 + block_q, seq_q)
        s_rows = q[..., i0:i1, :] @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        m = torch.full(s_rows.shape[:-1], float("-inf"), dtype=torch.float64)
        l = torch.zeros_like(m)  # noqa: E741
        acc = torch.zeros(*s_rows.shape[:-1], v.size(-1), dtype=torch.float64)
        last = seq_k if bug != "ragged key tile dropped" else seq_k // block_k * block_k
        for j0 in range(0, last, block_k):
            j1 = min(j0 + block_k, seq_k)
            s = s_rows[..., j0:j1]
            if causal:
                rows, cols = torch.arange(i0, i1), torch.arange(j0, j1)
                s = s.masked_fill(cols[None, :] > rows[:, None], float("-inf"))
            m_new = torch.maximum(m, s.amax(-1))
            safe = m_new.masked_fill(m_new == float("-inf"), 0.0)
            alpha = torch.exp(m - safe)
            p = torch.exp(s - safe[..., None])
            if bug == "no rescale":
                l, acc = l + p.sum(-1), acc + p @ v[..., j0:j1, :]  # noqa: E741
            elif bug == "max not kept":
                l, acc = alpha * l + p.sum(-1), alpha[..., None] * acc + p @ v[..., j0:j1, :]  # noqa: E741
                continue  # m is never updated: every tile forgets the ones before it
            else:
                l, acc = alpha * l + p.sum(-1), alpha[..., None] * acc + p @ v[..., j0:j1, :]  # noqa: E741
            m = m_new
        outs.append(acc / l[..., None])
        lses.append(m + torch.log(l))
    return torch.cat(outs, -2), torch.cat(lses, -1)


def forward_mistakes(q, k, v, causal, block_q, block_k) -> tuple[dict, dict]:
    """Known mistakes' (out, lse), as two ``mistakes`` dicts in the inputs' dtype."""
    dtype = q.dtype
    seq_q, seq_k = q.size(-2), k.size(-2)
    outs, lses = {}, {}
    for bug, text in [
        ("no rescale", "the running sum and output are not rescaled by exp(m_old - m_new) when the max grows"),
        ("max not kept", "the running max is never updated (m = m_new is missing), so each tile forgets the last"),
        ("ragged key tile dropped", "the last, shorter key tile is skipped (Tk is not a multiple of block_k)"),
    ]:
        out, lse = tiled_variant(q, k, v, causal, block_q, block_k, bug)
        outs[text], lses[text] = out.to(dtype), lse.to(dtype)
    unscaled = q.double() @ k.double().transpose(-2, -1)
    allowed = torch.ones(seq_q, seq_k, dtype=torch.bool).tril() if causal else None
    out, lse = attend(unscaled, v, allowed)
    outs["the scores are not divided by sqrt(D)"] = out.to(dtype)
    lses["the scores are not divided by sqrt(D)"] = lse.to(dtype)
    if causal and seq_q != seq_k:
        bottom_right = torch.ones(seq_q, seq_k, dtype=torch.bool).tril(diagonal=seq_k - seq_q)
        out, lse = attend(dense_scores(q, k), v, bottom_right)
        text = "the causal mask is aligned bottom-right; SDPA's is_causal (and this week) aligns it top-left: j <= i"
        outs[text], lses[text] = out.to(dtype), lse.to(dtype)
    _, exact_lse = attend(dense_scores(q, k), v, allowed)
    lses["the LSE misses the running max: it should be m + log(l), not log(l)"] = lse_without_max(q, k, causal).to(
        dtype
    )
    lses["the LSE is in base 2; use the natural log"] = (exact_lse / math.log(2)).to(dtype)
    return outs, lses


def lse_without_max(q, k, causal) -> torch.Tensor:
    """log(l) with l summed against the final running max: the LSE minus the row max."""
    scores = dense_scores(q, k)
    if causal:
        scores = scores.masked_fill(~torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril(), float("-inf"))
    return torch.logsumexp(scores, -1) - scores.amax(-1)


# -- naive attention ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize(("tq", "tk"), [(7, 7), (5, 9), (9, 5)], ids=["7x7", "Tq5-Tk9", "Tq9-Tk5"])
def test_naive_attention(student, reference, tq, tk, causal, dtype):
    q, k, v = qkv(tq, tk, dtype, seed=1, d=16)
    out, lse = expect_sequence(student.naive_attention(q, k, v, causal), 2, name="naive_attention(q, k, v)")
    want_out, want_lse = truth(reference, q, k, v, causal)
    outs, lses = forward_mistakes(q, k, v, causal, 16, 16)
    label = f"naive_attention, Tq={tq}, Tk={tk}, causal={causal}, {DTYPE_NAMES[dtype]}"
    assert_close(out, want_out, name=f"{label}: output", mistakes=outs, hint="softmax(q k^T / sqrt(D)) v")
    assert_close(
        lse, want_lse, name=f"{label}: LSE", mistakes=lses, hint="torch.logsumexp of the masked, scaled scores"
    )


# -- the tiled forward ----------------------------------------------------------------------------

FORWARD = {
    "Tq100-Tk75-tiles16x16": (100, 75, 16, 16),
    "Tq75-Tk100-tiles16x32": (75, 100, 16, 32),
    "Tq33-Tk47-tiles16x16": (33, 47, 16, 16),
    "Tq64-Tk64-tiles32x16": (64, 64, 32, 16),
    "Tq1-Tk75-tiles16x16": (1, 75, 16, 16),
}


def check_forward(student, reference, tq, tk, bq, bk, causal, dtype, seed, traced=False, scale=1.0, **tolerance):
    q, k, v = qkv(tq, tk, dtype, seed=seed, scale=scale)
    function = student.flash_attention_forward
    result = (function.traced if traced else function)(q, k, v, causal, bq, bk)
    label = f"flash_attention_forward, Tq={tq}, Tk={tk}, tiles {bq}x{bk}, causal={causal}, {DTYPE_NAMES[dtype]}"
    if scale != 1.0:
        label += f", scores up to {dense_scores(q, k).abs().max().item():.0f}"
    if traced:
        check_memory(student, tq, tk, bq, bk, label)
    out, lse = expect_sequence(result, 2, name=label, hint="return (out, lse)")
    want_out, want_lse = truth(reference, q, k, v, causal)
    outs, lses = forward_mistakes(q, k, v, causal, bq, bk)
    assert_close(
        out,
        want_out,
        name=f"{label}: output",
        mistakes=outs,
        hint="online softmax: m_new = max(m, rowmax(s)); l = exp(m - m_new) l + rowsum(exp(s - m_new)); "
        "acc = exp(m - m_new) acc + exp(s - m_new) v; out = acc / l at the end",
        **tolerance,
    )
    assert_close(
        lse,
        want_lse,
        name=f"{label}: LSE (B, H, Tq)",
        mistakes=lses,
        hint="lse = m + log(l) with the final running max m and sum l of each row",
        **tolerance,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("case", list(FORWARD))
def test_flash_forward(student, reference, case, causal, dtype):
    tq, tk, bq, bk = FORWARD[case]
    check_forward(student, reference, tq, tk, bq, bk, causal, dtype, seed=10)


@pytest.mark.parametrize(("dtype", "scale"), [(torch.float32, 6.0), (torch.float64, 50.0)], ids=DTYPE_IDS)
def test_flash_forward_large_logits(student, reference, dtype, scale):
    # float32 scores near 150 carry rounding errors of ~1e-5, which the softmax passes on: 1e-4 absolute.
    loose = LOOSE if dtype == torch.float32 else {}
    check_forward(student, reference, 100, 75, 16, 16, False, dtype, seed=20, scale=scale, **loose)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_flash_forward_memory(student, reference, causal):
    check_forward(student, reference, 100, 75, 16, 16, causal, torch.float64, seed=30, traced=True)


PEAK_T, PEAK_TILE = 4096, 128
PEAK_LIMIT = PEAK_T * PEAK_T * 4 // 4  # a quarter of one float32 (T x T) score matrix: 16 MB


def test_flash_forward_peak_memory(student, reference):
    """Measured from outside: the worker's peak resident memory during the call, read by the grader.

    The shape tracer sees torch's tensors only; the kernel's accounting of the process sees
    every byte (NumPy, plain Python lists, a C extension). A 4096 x 4096 float32 score matrix
    is 64 MB; the tiled forward needs under a megabyte beyond its inputs and output.
    """
    q, k, v = qkv(PEAK_T, PEAK_T, torch.float32, seed=33, d=32)
    q, k, v = (t[:1, :1].contiguous() for t in (q, k, v))  # (1, 1, T, 32): 512 KB each
    function = student.flash_attention_forward
    function(q[..., :256, :], k[..., :256, :], v[..., :256, :], False, PEAK_TILE, PEAK_TILE)  # warm-up
    result = function.measured(q, k, v, False, PEAK_TILE, PEAK_TILE)
    label = f"flash_attention_forward, Tq=Tk={PEAK_T}, tiles {PEAK_TILE}x{PEAK_TILE}, float32"
    peak = student.last_peak_bytes
    if peak is None:
        pytest.skip("peak memory cannot be measured in-process (otter, nbgrader)")
    out, _ = expect_sequence(result, 2, name=label, hint="return (out, lse)")
    want, _ = truth(reference, q, k, v, False)
    assert_close(out, want, name=f"{label}: output")
    if peak > PEAK_LIMIT:
        raise CheckFailed(
            f"{label}: the process's memory grew by {peak / 2**20:.0f} MB during the call; a full "
            f"{PEAK_T} x {PEAK_T} float32 score matrix is {PEAK_T * PEAK_T * 4 / 2**20:.0f} MB, and the tiled "
            f"forward needs under {PEAK_LIMIT / 2**20:.0f} MB\nHint: {MEMORY_HINT}"
        )


# -- the tiled backward ---------------------------------------------------------------------------


def true_gradients(reference, q, k, v, grad_out, causal):
    leaves = [t.double().requires_grad_() for t in (q, k, v)]
    out, _ = reference.naive_attention(*leaves, causal)
    return [g.to(q.dtype) for g in reference_grads(out, leaves, grad_out.double())]


def backward_mistakes(q, k, v, grad_out, causal) -> list[dict[str, torch.Tensor]]:
    """Known mistakes' (dq, dk, dv), each a ``mistakes`` dict."""
    scale = 1 / math.sqrt(q.size(-1))
    allowed = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril() if causal else None
    scores = dense_scores(q, k)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(scores, -1)
    do, q64, k64, v64 = grad_out.double(), q.double(), k.double(), v.double()
    dp = do @ v64.transpose(-2, -1)
    ds_right = p * (dp - (p * dp).sum(-1, keepdim=True))
    ds_wrong = p * dp
    no_delta = "dS = P * dP misses the rowsum(dO * O) term: dS = P * (dP - delta) with delta = rowsum(dO * O)"
    no_scale = "the 1/sqrt(D) of the scores is missing from dQ and dK"
    dtype = q.dtype
    return [
        {no_delta: (ds_wrong @ k64 * scale).to(dtype), no_scale: (ds_right @ k64).to(dtype)},
        {
            no_delta: (ds_wrong.transpose(-2, -1) @ q64 * scale).to(dtype),
            no_scale: (ds_right.transpose(-2, -1) @ q64).to(dtype),
        },
        {},
    ]


BACKWARD = {
    "Tq100-Tk75-tiles16x16": (100, 75, 16, 16),
    "Tq75-Tk100-tiles16x32": (75, 100, 16, 32),
    "Tq33-Tk47-tiles16x16": (33, 47, 16, 16),
}


def check_gradients(grads, expected, mistakes, label: str) -> None:
    grads = expect_sequence(grads, 3, name=label, hint="return (dq, dk, dv)")
    for name, got, want, known in zip(("dq", "dk", "dv"), grads, expected, mistakes, strict=True):
        assert_close(
            got,
            want,
            name=f"{label}: {name}",
            mistakes=known,
            hint="recompute P = exp(s - lse) per tile; dV += P^T dO; dP = dO V^T; dS = P * (dP - delta); "
            "dQ += dS K / sqrt(D); dK += dS^T Q / sqrt(D)",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("case", list(BACKWARD))
def test_flash_backward(student, reference, case, causal, dtype):
    tq, tk, bq, bk = BACKWARD[case]
    q, k, v = qkv(tq, tk, dtype, seed=40)
    grad_out = randn(B, H, tq, D, dtype=dtype, seed=43)
    out, lse = truth(reference, q, k, v, causal)
    grads = student.flash_attention_backward(q, k, v, out, lse, grad_out, causal, bq, bk)
    label = f"flash_attention_backward, Tq={tq}, Tk={tk}, tiles {bq}x{bk}, causal={causal}, {DTYPE_NAMES[dtype]}"
    check_gradients(
        grads,
        true_gradients(reference, q, k, v, grad_out, causal),
        backward_mistakes(q, k, v, grad_out, causal),
        label,
    )


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_flash_backward_memory(student, reference, causal):
    q, k, v = qkv(100, 75, torch.float64, seed=50)
    grad_out = randn(B, H, 100, D, seed=53)
    out, lse = truth(reference, q, k, v, causal)
    grads = student.flash_attention_backward.traced(q, k, v, out, lse, grad_out, causal, 16, 16)
    label = f"flash_attention_backward, Tq=100, Tk=75, tiles 16x16, causal={causal}"
    check_memory(student, 100, 75, 16, 16, label)
    check_gradients(
        grads,
        true_gradients(reference, q, k, v, grad_out, causal),
        backward_mistakes(q, k, v, grad_out, causal),
        label,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_flash_attention_autograd(student, reference, causal, dtype):
    q, k, v = (t.requires_grad_() for t in qkv(100, 75, dtype, seed=60))
    grad_out = randn(B, H, 100, D, dtype=dtype, seed=63)
    out, grads = student.flash_attention.vjp(q, k, v, causal, 16, 16, grad_outputs=grad_out, trace_shapes=True)
    label = (
        f"flash_attention (the autograd.Function), Tq=100, Tk=75, tiles 16x16, causal={causal}, {DTYPE_NAMES[dtype]}"
    )
    check_memory(
        student,
        100,
        75,
        16,
        16,
        f"{label}, forward and backward",
        hint=MEMORY_HINT + "; save only q, k, v, the output and the LSE for the backward pass",
    )
    want_out, _ = truth(reference, q.detach(), k.detach(), v.detach(), causal)
    assert_close(out, want_out, name=f"{label}: output")
    expected = true_gradients(reference, q.detach(), k.detach(), v.detach(), grad_out, causal)
    check_gradients(
        grads[:3],  # one entry per positional argument: causal, block_q and block_k have none
        expected,
        backward_mistakes(q.detach(), k.detach(), v.detach(), grad_out, causal),
        f"{label}: gradient through vjp",
    )


def test_flash_uses_no_fused_attention(student, reference):
    q, k, v = qkv(40, 30, torch.float32, seed=70)
    grad_out = randn(B, H, 40, D, dtype=torch.float32, seed=73)
    out, lse = truth(reference, q, k, v, True)
    calls = [
        ("flash_attention_forward", lambda: student.flash_attention_forward(q, k, v, True, 16, 16)),
        ("flash_attention_backward", lambda: student.flash_attention_backward(q, k, v, out, lse, grad_out, True)),
        (
            "flash_attention (forward and backward)",
            lambda: student.flash_attention.vjp(
                *(t.clone().requires_grad_() for t in (q, k, v)), True, grad_outputs=grad_out
            ),
        ),
        ("naive_attention", lambda: student.naive_attention(q, k, v, True)),
    ]
    for label, call in calls:
        call()
        assert_no_forbidden_ops(
            student.last_ops, FORBIDDEN, name=label, hint="write attention yourself: no F.scaled_dot_product_attention"
        )


def tile_shapes(shapes) -> set[tuple[int, int]]:
    """The last two dims of every traced tensor with at least two."""
    return {tuple(shape[-2:]) for shape in shapes if len(shape) >= 2}


def check_tiles(student, bq: int, bk: int, label: str) -> None:
    """The scores really come in ``block_q x block_k`` tiles (either way round), and never in the default 16 x 16."""
    seen = tile_shapes(student.last_shapes)
    if (16, 16) in seen:
        fails(
            f"{label}: created a tensor whose last two dims are 16 x 16 although the tiles are {bq} x {bk}; "
            "the default tile sizes were used somewhere (pass block_q and block_k on, through FlashAttention.apply "
            "and ctx to the backward pass)"
        )
    if (bq, bk) not in seen and (bk, bq) not in seen:
        fails(
            f"{label}: no tensor of scores of one {bq} x {bk} tile was created; honour block_q (query rows per "
            "tile) and block_k (keys per tile) instead of tiles of your own"
        )


def test_flash_tiles_follow_block_sizes(student, reference):
    """block_q and block_k are options: the forward, the backward and the autograd.Function must use them."""
    bq, bk = 32, 8  # Tq = 100 and Tk = 75 with D = 32: no honest tensor ends in 16 x 16
    q, k, v = qkv(100, 75, torch.float64, seed=65)
    grad_out = randn(B, H, 100, D, seed=66)
    out, lse = truth(reference, q, k, v, True)
    label = f"flash_attention_forward(q, k, v, causal=True, block_q={bq}, block_k={bk}), Tq=100, Tk=75"
    result = student.flash_attention_forward.traced(q, k, v, True, bq, bk)
    check_tiles(student, bq, bk, label)
    got_out, got_lse = expect_sequence(result, 2, name=label, hint="return (out, lse)")
    assert_close(got_out, out, name=f"{label}: output")
    assert_close(got_lse, lse, name=f"{label}: LSE")
    label = f"flash_attention_backward(..., causal=True, block_q={bq}, block_k={bk}), Tq=100, Tk=75"
    grads = student.flash_attention_backward.traced(q, k, v, out, lse, grad_out, True, bq, bk)
    check_tiles(student, bq, bk, label)
    expected = true_gradients(reference, q, k, v, grad_out, True)
    check_gradients(grads, expected, [{}, {}, {}], label)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    label = f"flash_attention(q, k, v, True, {bq}, {bk}) forward and backward (vjp)"
    _, grads = student.flash_attention.vjp(*leaves, True, bq, bk, grad_outputs=grad_out, trace_shapes=True)
    check_tiles(student, bq, bk, label)
    check_gradients(grads[:3], expected, [{}, {}, {}], f"{label}: gradient")


# -- masked scores far below any "big negative number" ------------------------------------------------

# Every allowed score of these inputs is about -2^34 = -1.7e10 (the key's first feature is 2^36, the query's -1,
# the other 15 features small integers, D = 16 so the 1/sqrt(D) = 1/4 is exact): a mask filled with -1e4, -1e9
# or -1e10 instead of -inf then outweighs every allowed key. torch.finfo(dtype).min fills stay correct.
# Tolerances: the LSE near -1.7e10 is rounded to a few 1e-6, so exp(s - lse) (the handout's formula) is a few
# 1e-6 off in relative terms; 1e-4 relative and absolute leaves room for that and none for a wrong mask.
FAR = {"rtol": 1e-4, "atol": 1e-4}
FAR_CALLS = [
    "naive_attention",
    "flash_attention_forward",
    "flash_attention_backward",
    "sliding_window_attention",
    "masked_attention",
]


def far_below_inputs(tq: int, tk: int, seed: int):
    generator = torch.Generator().manual_seed(seed)

    def part(length: int, lead: float) -> torch.Tensor:
        x = torch.randint(-2, 3, (B, H, length, 16), generator=generator).double()
        x[..., 0] = lead
        return x

    q, k = part(tq, -1.0), part(tk, 2.0**36)
    return q, k, torch.randn(B, H, tk, 16, generator=generator, dtype=torch.float64)


def softmax_oracle(q, k, v, allowed):
    """``(out, lse)`` with torch.softmax (max subtracted: exact for these scores), zeros for rows without keys."""
    scores = (q @ k.transpose(-2, -1) / 4.0).masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, -1).nan_to_num(0.0) @ v, torch.logsumexp(scores, -1)


def big_negative(q, k, v, allowed, fill: float):
    scores = (q @ k.transpose(-2, -1) / 4.0).masked_fill(~allowed, fill)
    return torch.softmax(scores, -1) @ v


@pytest.mark.parametrize("call", FAR_CALLS)
def test_masks_hide_scores_far_below_big_negatives(student, reference, call):
    """Masked scores must be -inf (or finfo.min): allowed scores near -1.7e10 still beat a -1e9 or -1e10 fill."""
    tq, tk = (
        (40, 30) if call in ("naive_attention", "flash_attention_forward", "flash_attention_backward") else (30, 30)
    )
    q, k, v = far_below_inputs(tq, tk, seed=170)
    rows, cols = torch.arange(tq)[:, None], torch.arange(tk)[None, :]
    if call == "sliding_window_attention":
        allowed = (rows - cols).abs() <= 3
    elif call == "masked_attention":
        allowed = reference.sliding_window_mask(30, 2, [5])
    else:
        allowed = cols <= rows  # causal, top-left
    want_out, want_lse = softmax_oracle(q, k, v, allowed)
    mistakes = {
        f"masked scores filled with {fill:g} instead of -inf: allowed scores below {fill:g} lose to them": big_negative(
            q, k, v, allowed, fill
        )
        for fill in (-1e4, -1e9, -1e10)
    }
    what = f"{call} with every allowed score near -1.7e10 (float64)"
    hint = "fill masked scores with float('-inf') (or torch.finfo(dtype).min), never a big negative constant"
    if call == "flash_attention_backward":
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out, _ = softmax_oracle(*leaves, allowed)
        grad_out = randn(B, H, tq, 16, seed=171)
        expected = torch.autograd.grad(out, leaves, grad_out)
        grads = expect_sequence(
            student.flash_attention_backward(q, k, v, want_out, want_lse, grad_out, True, 16, 16),
            3,
            name=what,
            hint="return (dq, dk, dv)",
        )
        for name, got, want in zip(("dq", "dk", "dv"), grads, expected, strict=True):
            assert_close(got, want, name=f"{what}: {name}", hint=hint, **FAR)
        return
    if call == "naive_attention":
        result = student.naive_attention(q, k, v, True)
    elif call == "flash_attention_forward":
        result = student.flash_attention_forward(q, k, v, True, 16, 16)
    elif call == "sliding_window_attention":
        result = student.sliding_window_attention(q, k, v, 3, 8)
    else:
        result = student.masked_attention(q, k, v, allowed)
    if call in ("naive_attention", "flash_attention_forward"):
        out, lse = expect_sequence(result, 2, name=what, hint="return (out, lse)")
        assert_close(lse, want_lse, name=f"{what}: LSE", hint=hint)
    else:
        out = result
    assert_close(out, want_out, name=f"{what}: output", mistakes=mistakes, hint=hint, **FAR)


# -- sparse patterns -------------------------------------------------------------------------------

WINDOWS = {
    "T10-w2-global[0]": (10, 2, [0]),
    "T13-w1-global[0,7]": (13, 1, [0, 7]),
    "T9-w0-no-global": (9, 0, []),
    "T12-w3-global[11]": (12, 3, [11]),
}


@pytest.mark.parametrize("case", list(WINDOWS))
def test_sliding_window_mask(student, reference, case):
    length, window, global_tokens = WINDOWS[case]
    positions = torch.arange(length)
    distance = (positions[:, None] - positions[None, :]).abs()
    is_global = torch.zeros(length, dtype=torch.bool)
    is_global[global_tokens] = True
    band = distance <= window
    assert_equal(
        student.sliding_window_mask(length, window, global_tokens),
        reference.sliding_window_mask(length, window, global_tokens),
        name=f"sliding_window_mask({length}, window={window}, global_tokens={global_tokens})",
        mistakes={
            "off by one: |i - j| < window instead of <= window": (distance < window)
            | is_global[:, None]
            | is_global[None, :],
            "off by one: |i - j| <= window + 1": (distance <= window + 1) | is_global[:, None] | is_global[None, :],
            "global tokens only attend everywhere; every token must also attend them (set their columns too)": band
            | is_global[:, None],
            "global tokens are attended by every token, but they must also attend everywhere (set their rows too)": band
            | is_global[None, :],
        },
        hint="True where |i - j| <= window, and on the whole row and column of each global token",
    )


BIGBIRD = {
    "T30-block4-w1-r2-g1-seed0": (30, 4, 1, 2, 1, 0),
    "T30-block4-w1-r2-g1-seed1": (30, 4, 1, 2, 1, 1),
    "T50-block5-w0-r3-g2-seed7": (50, 5, 0, 3, 2, 7),
    "T17-block4-w1-r10-g0-seed3": (17, 4, 1, 10, 0, 3),
}


def bigbird_variant(length, block, window_blocks, n_random, n_global, seed, bug: str) -> torch.Tensor:
    n_blocks = -(-length // block)
    index = torch.arange(n_blocks)
    pattern = (index[:, None] - index[None, :]).abs() <= window_blocks
    pattern[:n_global, :] = True
    pattern[:, :n_global] = True
    base = pattern.clone()
    generator = torch.Generator().manual_seed(seed)
    if bug != "no random":
        for row in range(n_global, n_blocks):
            candidates = torch.arange(n_blocks) if bug == "all candidates" else (~base[row]).nonzero().flatten()
            pattern[row, candidates[torch.randperm(len(candidates), generator=generator)[:n_random]]] = True
    blocks = torch.arange(length) // block
    return pattern[blocks][:, blocks]


@pytest.mark.parametrize("case", list(BIGBIRD))
def test_bigbird_mask(student, reference, case):
    args = BIGBIRD[case]
    assert_equal(
        student.bigbird_mask(*args),
        reference.bigbird_mask(*args),
        name=f"bigbird_mask(T={args[0]}, block={args[1]}, window_blocks={args[2]}, n_random_blocks={args[3]}, "
        f"n_global_blocks={args[4]}, seed={args[5]})",
        mistakes={
            "no random blocks": bigbird_variant(*args, bug="no random"),
            "random blocks drawn among all blocks (they must come from those window and global do not cover)": (
                bigbird_variant(*args, bug="all candidates")
            ),
        },
        hint="window |a - b| <= window_blocks, global rows and columns, then per non-global row in order: "
        "candidates = blocks not yet allowed (increasing), torch.randperm(len(candidates), generator=g)[:r]",
    )


def test_bigbird_mask_is_seeded(student):
    args = (64, 4, 1, 2, 1)
    first = expect_tensor(student.bigbird_mask(*args, 11), name="bigbird_mask(64, 4, 1, 2, 1, seed=11)")
    again = student.bigbird_mask(*args, 11)
    other = student.bigbird_mask(*args, 12)
    assert_equal(
        again, first, name="bigbird_mask called twice with seed=11", hint="draw with your own seeded generator"
    )
    if torch.equal(other, first):
        fails("bigbird_mask gives the same mask for seeds 11 and 12; the random blocks must depend on the seed")


def test_seeded_draws_leave_the_global_generator_alone(student, reference):
    """bigbird_mask and random_projection draw from their own seeded generator only.

    ``torch.manual_seed(seed)`` followed by draws from the global generator gives the same numbers, but it resets
    the caller's random stream (every later dropout mask and sample changes): the worker compares torch's global
    RNG state before and after each call.
    """
    args = (40, 4, 1, 2, 1, 5)
    mask = student.bigbird_mask(*args)
    assert_global_rng_untouched(
        student.last_used_global_rng,
        name="bigbird_mask(40, block=4, window_blocks=1, n_random_blocks=2, n_global_blocks=1, seed=5)",
        hint="g = torch.Generator().manual_seed(seed) and torch.randperm(..., generator=g); never torch.manual_seed",
    )
    assert_equal(mask, reference.bigbird_mask(*args), name="bigbird_mask(40, 4, 1, 2, 1, seed=5)")
    projection = student.random_projection(24, 8, 9)
    assert_global_rng_untouched(
        student.last_used_global_rng,
        name="random_projection(24, 8, seed=9)",
        hint="torch.randn(..., generator=torch.Generator().manual_seed(seed)); never torch.manual_seed",
    )
    assert_equal(projection, reference.random_projection(24, 8, 9), name="random_projection(24, 8, seed=9)")


PATTERNS = {
    "sliding-window": lambda reference: reference.sliding_window_mask(30, 3, [0, 17]),
    "bigbird": lambda reference: reference.bigbird_mask(30, 4, 1, 2, 1, 2),
    "rows-without-keys": lambda reference: (
        torch.ones(30, 30, dtype=torch.bool).tril()[None, None]
        & (torch.arange(30) < torch.tensor([30, 12])[:, None])[:, None, :, None]
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_masked_attention(student, reference, pattern, dtype):
    q, k, v = qkv(30, 30, dtype, seed=80, d=16)
    mask = PATTERNS[pattern](reference)
    expected = reference.masked_attention(q.double(), k.double(), v.double(), mask).to(dtype)
    scores = dense_scores(q, k).masked_fill(~mask, float("-inf"))
    assert_close(
        student.masked_attention(q, k, v, mask),
        expected,
        name=f"masked_attention with the {pattern} mask, {DTYPE_NAMES[dtype]}",
        mistakes={
            "the mask is applied after the softmax": (torch.softmax(dense_scores(q, k), -1) * mask @ v.double()).to(
                dtype
            ),
            "a row with no allowed key gives NaN; it should give zeros": (torch.softmax(scores, -1) @ v.double()).to(
                dtype
            ),
        },
        hint="-inf where the mask is False before the softmax; rows with no key give zeros",
    )


SLIDING = {
    "T100-w5-block16": (100, 5, 16, True),
    "T100-w12-block16": (100, 12, 16, True),
    "T37-w0-block8": (37, 0, 8, False),
    "T20-w30-block16": (20, 30, 16, False),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(SLIDING))
def test_sliding_window_attention(student, reference, case, dtype):
    length, window, block, check_memory = SLIDING[case]
    q, k, v = qkv(length, length, dtype, seed=90, d=16)
    function = student.sliding_window_attention
    out = (function.traced if check_memory else function)(q, k, v, window, block)
    label = f"sliding_window_attention, T={length}, window={window}, block={block}, {DTYPE_NAMES[dtype]}"
    if check_memory:
        assert_no_tensor_with_dims(
            student.last_shapes,
            (length, length),
            name=label,
            hint="each query tile [i0, i1) only needs keys [i0 - window, i1 + window): slice them, never build T x T",
        )
    band = reference.sliding_window_mask(length, window)
    narrow = reference.sliding_window_mask(length, max(window - 1, 0))
    assert_close(
        out,
        reference.masked_attention(q.double(), k.double(), v.double(), band).to(dtype),
        name=label,
        mistakes={
            "the window is one key too narrow (|i - j| < window)": reference.masked_attention(
                q.double(), k.double(), v.double(), narrow
            ).to(dtype),
            "keys outside the window but inside the tile's slice are not masked": torch.cat(
                [
                    torch.softmax(
                        dense_scores(q[..., i : i + block, :], k[..., max(0, i - window) : i + block + window, :]), -1
                    )
                    @ v.double()[..., max(0, i - window) : i + block + window, :]
                    for i in range(0, length, block)
                ],
                -2,
            ).to(dtype),
        },
        hint="equal to masked_attention(q, k, v, sliding_window_mask(T, window))",
    )


# -- Linformer -----------------------------------------------------------------------------------------


def build_linformer(student, reference, dtype: torch.dtype, seed: int):
    args = (24, 3, 20, 6)  # d_model, n_heads (Dh = 8), seq_len, k_proj_dim (K = 6, unlike Dh)
    ref = reference.Linformer(*args).to(dtype)
    state = {
        name: randn(*p.shape, dtype=dtype, seed=seed + i, scale=0.5)
        for i, (name, p) in enumerate(ref.state_dict().items())
    }
    ref.load_state_dict(state)
    mine = student.Linformer(*args)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    return ref, mine


def linformer_mistakes(ref, x: torch.Tensor) -> dict[str, torch.Tensor]:
    b, t, d = x.shape
    h, dh = 3, d // 3

    def split(y):
        return y.view(b, t, h, dh).transpose(1, 2)

    q, k, v = split(ref.q_proj(x)), split(ref.k_proj(x)), split(ref.v_proj(x))
    e, f = ref.E[:, :t], ref.F[:, :t]

    def finish(keys, values, scale):
        weights = torch.softmax(q @ keys.transpose(-2, -1) / scale, -1)
        return ref.out_proj((weights @ values).transpose(1, 2).reshape(b, t, d))

    return {
        "E and F are swapped: E projects the keys, F the values": finish(f @ k, e @ v, math.sqrt(dh)),
        "the scores are divided by sqrt(K) (the projected length) instead of sqrt(Dh)": finish(
            e @ k, f @ v, math.sqrt(e.size(0))
        ),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("length", [20, 13], ids=["T20", "T13"])
def test_linformer(student, reference, length, dtype):
    ref, mine = build_linformer(student, reference, dtype, seed=100)
    x = randn(3, length, 24, dtype=dtype, seed=110)
    with torch.no_grad():
        expected = ref(x)
        mistakes = linformer_mistakes(ref, x)
    loose = LOOSE if dtype == torch.float32 else {}
    assert_close(
        mine(x),
        expected,
        name=f"Linformer(24, 3, seq_len=20, k_proj_dim=6) on (3, {length}, 24), {DTYPE_NAMES[dtype]}",
        mistakes=mistakes,
        hint="k' = E[:, :T] @ k and v' = F[:, :T] @ v per head (T -> K positions), then softmax(q k'^T / sqrt(Dh)) v'",
        **loose,
    )


def test_linformer_gradients(student, reference):
    ref, mine = build_linformer(student, reference, torch.float64, seed=120)
    x = randn(2, 17, 24, seed=121).requires_grad_()
    grad_output = randn(2, 17, 24, seed=122)
    _, grads = mine.vjp(x, grad_outputs=grad_output)
    expected = reference_grads(ref(x), [x, ref.E, ref.F], grad_output)
    hint = "keep E and F as nn.Parameter and use them in forward (sliced to the input's length)"
    assert_close(grads[0], expected[0], name="Linformer: gradient with respect to x", hint=hint)
    assert_close(mine.E.grad.fetch(), expected[1], name="Linformer: gradient of E", hint=hint)
    assert_close(mine.F.grad.fetch(), expected[2], name="Linformer: gradient of F", hint=hint)


def test_linformer_initialisation(student):
    """E and F start as independent N(0, 1/K) draws: standard deviation 1/sqrt(K), mean 0."""
    k_proj_dim, seq_len = 16, 400  # 6400 entries each: the sample std is within 1 % of 1/sqrt(K) = 0.25
    module = student.Linformer(32, 4, seq_len, k_proj_dim)
    target = 1 / math.sqrt(k_proj_dim)
    values = {}
    for name in ("E", "F"):
        value = expect_tensor(
            getattr(module, name).fetch(),
            name=f"Linformer(32, 4, seq_len={seq_len}, k_proj_dim={k_proj_dim}).{name}",
            shape=(k_proj_dim, seq_len),
        )
        std, mean = float(value.double().std()), float(value.double().mean())
        if not (0.9 * target < std < 1.1 * target and abs(mean) < 0.05):
            shown = f"mean {mean:.3f}, standard deviation {std:.4f}"
            fails(
                f"Linformer(32, 4, seq_len={seq_len}, k_proj_dim={k_proj_dim}).{name} starts with {shown}; it should "
                f"be drawn N(0, 1/K): mean 0, standard deviation 1/sqrt(K) = {target:.3f} "
                "(torch.randn(K, seq_len) / math.sqrt(K))"
            )
        values[name] = value
    if torch.equal(values["E"], values["F"]):
        fails("Linformer: E and F start equal; draw them separately (they are two different projections)")


# -- Performer ----------------------------------------------------------------------------------------------


def test_random_projection(student, reference):
    for m, d, seed in [(16, 8, 0), (64, 16, 5)]:
        assert_equal(
            student.random_projection(m, d, seed),
            reference.random_projection(m, d, seed),
            name=f"random_projection({m}, {d}, seed={seed})",
            mistakes={
                "uniform draws (torch.rand) instead of Gaussian ones (torch.randn)": torch.rand(
                    m, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
                )
            },
            hint="torch.randn(M, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_favor_features(student, reference, dtype):
    x = randn(2, 3, 9, 8, dtype=dtype, seed=130, scale=0.7)
    w = reference.random_projection(32, 8, seed=2).to(dtype)
    projected = x.double() @ w.double().T
    norms = 0.5 * (x.double() ** 2).sum(-1, keepdim=True)
    assert_close(
        student.favor_features(x, w),
        reference.favor_features(x.double(), w.double()).to(dtype),
        name=f"favor_features(x (2, 3, 9, 8), projection (32, 8)), {DTYPE_NAMES[dtype]}",
        mistakes={
            "the -|x|^2 / 2 term is missing from the exponent": (torch.exp(projected) / math.sqrt(32)).to(dtype),
            "the 1 / sqrt(M) factor is missing": torch.exp(projected - norms).to(dtype),
            "1 / M instead of 1 / sqrt(M)": (torch.exp(projected - norms) / 32).to(dtype),
        },
        hint="exp(x W^T - |x|^2 / 2) / sqrt(M), the squared norm over the last dim of x",
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_performer_attention(student, reference, dtype):
    q, k, v = qkv(30, 21, dtype, seed=140, d=16)
    w = reference.random_projection(64, 16, seed=3).to(dtype)
    q64, k64, v64, w64 = q.double(), k.double(), v.double(), w.double()

    def estimate(qs, ks, with_norm=True):
        phi_q = torch.exp(qs @ w64.T - (0.5 * (qs**2).sum(-1, keepdim=True) if with_norm else 0))
        phi_k = torch.exp(ks @ w64.T - (0.5 * (ks**2).sum(-1, keepdim=True) if with_norm else 0))
        return (phi_q @ (phi_k.transpose(-2, -1) @ v64)) / (phi_q @ phi_k.sum(-2)[..., None])

    quarter = 16**-0.25
    assert_close(
        student.performer_attention(q, k, v, w),
        reference.performer_attention(q64, k64, v64, w64).to(dtype),
        name=f"performer_attention, Tq=30, Tk=21, D=16, M=64, {DTYPE_NAMES[dtype]}",
        mistakes={
            "q and k are not scaled by D^(-1/4), so the kernel is exp(q . k) instead of exp(q . k / sqrt(D))": estimate(
                q64, k64
            ).to(dtype),
            "q and k are scaled by D^(-1/2) each (the sqrt(D) is applied twice)": estimate(q64 / 4, k64 / 4).to(dtype),
            "the features miss the -|x|^2 / 2 term": estimate(q64 * quarter, k64 * quarter, with_norm=False).to(dtype),
        },
        hint="phi(q D^-1/4) (phi(k D^-1/4)^T v), divided row by row by phi(q D^-1/4) (phi(k D^-1/4)^T 1)",
    )


def test_performer_memory(student, reference):
    q, k, v = qkv(100, 75, torch.float64, seed=150, d=16)
    w = reference.random_projection(64, 16, seed=4)
    out = student.performer_attention.traced(q, k, v, w)
    label = "performer_attention, Tq=100, Tk=75, M=64"
    assert_no_tensor_with_dims(
        student.last_shapes,
        (100, 75),
        name=label,
        hint="multiply phi(k)^T v first ((M, Dv) per head), never phi(q) phi(k)^T, which is Tq x Tk",
    )
    assert_close(out, reference.performer_attention(q, k, v, w), name=label)


def test_performer_error_shrinks_with_features(student, reference):
    """Your random_projection, favor_features and performer_attention together: more features, less error."""
    q, k, v = qkv(20, 20, torch.float64, seed=160, d=16, scale=0.5)
    exact, _ = reference.naive_attention(q, k, v)
    errors = {}
    for m in (16, 256, 2048):
        runs = []
        for seed in range(6):
            w = expect_tensor(student.random_projection(m, 16, seed), name=f"random_projection({m}, 16, {seed})")
            out = expect_tensor(
                student.performer_attention(q, k, v, w.double()),
                name=f"performer_attention with M={m}",
                shape=tuple(exact.shape),
                dtype=torch.float64,
            )
            runs.append((out - exact).abs().mean().item())
        errors[m] = sum(runs) / len(runs)
    shown = ", ".join(f"M={m}: {e:.4f}" for m, e in errors.items())
    # Monte Carlo error falls like 1 / sqrt(M): about 3x from 16 to 256 and 2.5x from 256 to 2048 here.
    if not (errors[256] < errors[16] / 1.6 and errors[2048] < errors[256] / 1.6 and errors[2048] < 0.03):
        fails(
            f"the mean error of performer_attention against exact attention does not shrink like 1/sqrt(M) "
            f"({shown}, averaged over 6 seeds); with Gaussian features and the exact estimator it falls by about "
            "3x from M=16 to 256 and 2.5x from 256 to 2048"
        )
