"""The week 01 reference solution against PyTorch's own ops (the hidden tests trust it as the expected value)."""

from __future__ import annotations

import math
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from tests.helpers import REPO, randn

TIGHT = {"rtol": 1e-12, "atol": 1e-12}  # float64: only summation-order noise
FP32 = {"rtol": 1e-5, "atol": 1e-5}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, rtol: float, atol: float, msg: str = "") -> None:
    """Same shape, dtype and device, and |actual - expected| <= atol + rtol * |expected| everywhere (NaN fails).

    (torch.testing.assert_close would do, but its first call imports the distributed package: a second.)
    """
    prefix = f"{msg}: " if msg else ""
    assert actual.shape == expected.shape, f"{prefix}shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{prefix}dtype {actual.dtype} != {expected.dtype}"
    assert actual.device == expected.device, f"{prefix}device {actual.device} != {expected.device}"
    if not torch.allclose(actual, expected, rtol=rtol, atol=atol):
        error = (actual.detach().double() - expected.detach().double()).abs().nan_to_num(nan=math.inf)
        where = tuple(int(i) for i in torch.unravel_index(error.argmax(), error.shape))
        raise AssertionError(
            f"{prefix}largest error {float(error.max()):.3g} at {where} (rtol={rtol:g}, atol={atol:g})"
        )


@pytest.fixture(scope="module")
def ref() -> ModuleType:
    return reference.load(config.load(REPO).week("01"))


def oracle_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def padding(lengths: list[int], seq_len: int) -> torch.Tensor:
    """(B, 1, 1, T) True for real tokens, built element by element."""
    mask = torch.zeros(len(lengths), 1, 1, seq_len, dtype=torch.bool)
    for b, length in enumerate(lengths):
        for t in range(length):
            mask[b, 0, 0, t] = True
    return mask


# -- softmax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "dim"),
    [
        ((7,), -1),
        ((7,), 0),
        ((3, 5), -1),
        ((3, 5), 0),
        ((2, 3, 9), 1),
        ((2, 3, 9), -1),
        ((2, 3, 4, 5), 2),
        ((1, 1), -1),
    ],
)
def test_softmax_matches_torch(ref, shape, dim):
    x = randn(*shape, seed=1, scale=3.0)
    result = ref.softmax(x, dim=dim)
    assert result.dtype == torch.float64
    assert result.shape == x.shape
    assert_close(result, torch.softmax(x, dim=dim), **TIGHT)
    assert_close(result.sum(dim=dim), torch.ones(()).double().expand(result.sum(dim=dim).shape), **TIGHT)


def test_softmax_default_dim_is_last(ref):
    x = randn(4, 6, seed=2)
    assert_close(ref.softmax(x), torch.softmax(x, dim=-1), **TIGHT)


def test_softmax_float32(ref):
    x = randn(5, 8, seed=3, dtype=torch.float32, scale=3.0)
    result = ref.softmax(x, dim=-1)
    assert result.dtype == torch.float32
    assert_close(result, torch.softmax(x, dim=-1), **FP32)


@pytest.mark.parametrize(("dtype", "scale"), [(torch.float32, 1e4), (torch.float64, 1e4), (torch.float64, 1e300)])
def test_softmax_large_values(ref, dtype, scale):
    x = randn(4, 6, seed=4, dtype=dtype, scale=scale)
    x[0] = scale  # a row of equal huge values: uniform weights
    x[1, :3] = -scale
    result = ref.softmax(x, dim=-1)
    assert torch.isfinite(result).all()
    tol = TIGHT if dtype == torch.float64 else FP32
    assert_close(result, torch.softmax(x, dim=-1), **tol)
    assert_close(result[0], torch.full((6,), 1 / 6, dtype=dtype), **tol)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_softmax_half_precision(ref, dtype):
    """Computed in the input dtype, well within the hidden test's 8 eps of the exact softmax rounded to it."""
    x = randn(6, 37, seed=12, dtype=dtype, scale=4.0)
    x[1, :5] = float("-inf")
    x[2] = float("-inf")
    result = ref.softmax(x, dim=-1)
    assert result.dtype == dtype
    exact = torch.softmax(x.double(), dim=-1).nan_to_num(0.0)
    assert_close(result.double(), exact.to(dtype).double(), rtol=4 * torch.finfo(dtype).eps, atol=1e-5)
    assert (result[2] == 0).all()


def test_softmax_partial_minus_inf(ref):
    x = randn(3, 5, seed=5)
    x[0, 1] = x[1, 0] = x[1, 4] = float("-inf")
    result = ref.softmax(x, dim=-1)
    assert_close(result, torch.softmax(x, dim=-1), **TIGHT)
    assert result[0, 1] == 0
    assert result[1, 0] == 0


@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_all_minus_inf_slice_is_zero(ref, dim):
    x = randn(4, 5, seed=6).requires_grad_(False)
    if dim == -1:
        x[2] = float("-inf")
    else:
        x[:, 3] = float("-inf")
    x.requires_grad_(True)
    result = ref.softmax(x, dim=dim)
    assert not torch.isnan(result).any()
    dead = result[2] if dim == -1 else result[:, 3]
    assert_close(dead, torch.zeros_like(dead), rtol=0, atol=0)
    live = torch.ones(4, 5, dtype=torch.bool)
    if dim == -1:
        live[2] = False
    else:
        live[:, 3] = False
    assert_close(result[live], torch.softmax(x.detach(), dim=dim)[live], **TIGHT)
    (grad,) = torch.autograd.grad((result * randn(4, 5, seed=7)).sum(), x)
    assert torch.isfinite(grad).all()


def test_softmax_gradient_matches_torch(ref):
    x = randn(3, 6, seed=8).requires_grad_(True)
    upstream = randn(3, 6, seed=9)
    (ours,) = torch.autograd.grad((ref.softmax(x, dim=-1) * upstream).sum(), x)
    (theirs,) = torch.autograd.grad((torch.softmax(x, dim=-1) * upstream).sum(), x)
    assert_close(ours, theirs, **TIGHT)


def test_softmax_gradcheck(ref):
    x = randn(2, 4, seed=10).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ref.softmax(t, dim=-1), (x,))


def test_softmax_does_not_modify_input(ref):
    x = randn(3, 4, seed=11)
    before = x.clone()
    ref.softmax(x, dim=0)
    assert torch.equal(x, before)


# -- masks -----------------------------------------------------------------------------


@pytest.mark.parametrize("seq_len", [1, 7, 33])
def test_causal_mask(ref, seq_len):
    mask = ref.causal_mask(seq_len)
    assert mask.dtype == torch.bool
    assert mask.shape == (seq_len, seq_len)
    assert torch.equal(mask, torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool)))
    assert mask.diagonal().all()


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_causal_mask_device(ref, device):
    mask = ref.causal_mask(5, device=device)
    assert mask.device == torch.device(device)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, torch.tril(torch.ones(5, 5, dtype=torch.bool)))


def test_causal_mask_device_is_forwarded(ref):
    # The meta device would show it on any machine, but its first use imports for a second or two.
    if torch.cuda.is_available():
        mask = ref.causal_mask(4, device="cuda")
        assert mask.device.type == "cuda"
        assert torch.equal(mask.cpu(), torch.tril(torch.ones(4, 4, dtype=torch.bool)))
    else:
        with pytest.raises((AssertionError, RuntimeError)):  # a CPU-only torch refuses to make a CUDA tensor
            ref.causal_mask(4, device="cuda")


def test_padding_mask(ref):
    mask = ref.padding_mask(torch.tensor([3, 0, 5, 1]), 5)
    assert mask.dtype == torch.bool
    assert mask.shape == (4, 1, 1, 5)
    expected = torch.tensor(
        [
            [True, True, True, False, False],
            [False, False, False, False, False],
            [True, True, True, True, True],
            [True, False, False, False, False],
        ]
    ).reshape(4, 1, 1, 5)
    assert torch.equal(mask, expected)
    assert torch.equal(mask, padding([3, 0, 5, 1], 5))


def test_padding_mask_single_sequence(ref):
    mask = ref.padding_mask(torch.tensor([2]), 3)
    assert mask.shape == (1, 1, 1, 3)
    assert mask.flatten().tolist() == [True, True, False]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_padding_mask_device_follows_lengths(ref):
    mask = ref.padding_mask(torch.tensor([1, 2], device="cuda"), 4)
    assert mask.device.type == "cuda"
    assert torch.equal(mask.cpu(), padding([1, 2], 4))


# -- scaled dot-product attention ------------------------------------------------------------


SHAPES = [
    # (leading dims, Tq, Tk, d, dv)
    ((), 5, 5, 4, 4),
    ((), 3, 7, 4, 6),
    ((2,), 4, 6, 8, 3),
    ((2, 3), 5, 7, 8, 4),
    ((2, 3), 6, 6, 16, 16),
    ((1, 2, 2), 1, 9, 4, 5),
]


def qkv(lead, tq, tk, d, dv, *, dtype=torch.float64, seed=0, scale=1.0):
    q = randn(*lead, tq, d, seed=seed, dtype=dtype, scale=scale)
    k = randn(*lead, tk, d, seed=seed + 1, dtype=dtype, scale=scale)
    v = randn(*lead, tk, dv, seed=seed + 2, dtype=dtype)
    return q, k, v


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, TIGHT), (torch.float32, FP32)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, (*s[0], *s[1:]))))
def test_attention_unmasked_matches_torch(ref, shape, dtype, tol):
    lead, tq, tk, d, dv = shape
    q, k, v = qkv(*shape, dtype=dtype)
    output, weights = ref.scaled_dot_product_attention(q, k, v)
    assert output.shape == (*lead, tq, dv)
    assert weights.shape == (*lead, tq, tk)
    assert output.dtype == weights.dtype == dtype
    assert_close(output, F.scaled_dot_product_attention(q, k, v), **tol)
    assert_close(weights, oracle_weights(q, k), **tol)
    assert_close(weights.sum(-1), torch.ones(*lead, tq, dtype=dtype), **tol)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, TIGHT), (torch.float32, FP32)], ids=["fp64", "fp32"])
def test_attention_causal_and_padding_matches_torch(ref, dtype, tol):
    batch, heads, seq_len, d, dv = 3, 2, 6, 8, 5
    q, k, v = qkv((batch, heads), seq_len, seq_len, d, dv, dtype=dtype, seed=20)
    lengths = [6, 2, 4]
    mask = torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool)) & padding(lengths, seq_len)
    assert mask.shape == (batch, 1, seq_len, seq_len)
    assert mask.any(-1).all()  # no fully masked rows: position 0 is always visible
    output, weights = ref.scaled_dot_product_attention(q, k, v, mask)
    assert output.shape == (batch, heads, seq_len, dv)
    assert weights.shape == (batch, heads, seq_len, seq_len)
    assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **tol)
    assert_close(weights, oracle_weights(q, k, mask), **tol)
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_attention_masks_built_by_reference_match_torch(ref):
    q, k, v = qkv((2, 2), 5, 5, 4, 3, seed=30)
    lengths = torch.tensor([5, 3])
    mask = ref.causal_mask(5) & ref.padding_mask(lengths, 5)
    output, _ = ref.scaled_dot_product_attention(q, k, v, mask)
    assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TIGHT)
    assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask & True), **TIGHT)
    # the causal mask alone is torch's is_causal
    output, _ = ref.scaled_dot_product_attention(q, k, v, ref.causal_mask(5))
    assert_close(output, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TIGHT)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, TIGHT), (torch.float32, FP32)], ids=["fp64", "fp32"])
def test_attention_rectangular_mask_matches_torch(ref, dtype, tol):
    q, k, v = qkv((2, 3), 4, 7, 6, 5, dtype=dtype, seed=40)
    generator = torch.Generator().manual_seed(41)
    mask = torch.rand(2, 3, 4, 7, generator=generator) > 0.5
    mask[..., 0] = True
    output, weights = ref.scaled_dot_product_attention(q, k, v, mask)
    assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **tol)
    assert_close(weights, oracle_weights(q, k, mask), **tol)
    # a (B, 1, 1, Tk) padding mask broadcasts over heads and queries
    pad = padding([7, 2], 7)
    output, weights = ref.scaled_dot_product_attention(q, k, v, pad)
    assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=pad), **tol)
    assert_close(weights, oracle_weights(q, k, pad), **tol)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, FP32), (torch.float64, TIGHT)], ids=["fp32", "fp64"])
def test_attention_large_logits(ref, dtype, tol):
    q, k, v = qkv((2,), 4, 5, 8, 3, dtype=dtype, seed=50, scale=100.0)
    output, weights = ref.scaled_dot_product_attention(q, k, v)
    assert torch.isfinite(output).all()
    assert torch.isfinite(weights).all()
    assert_close(output, F.scaled_dot_product_attention(q, k, v), **tol)
    assert_close(weights, oracle_weights(q, k), **tol)


@pytest.mark.parametrize("size", [2.0**40, 2.0**100])
def test_attention_masked_keys_beside_scores_far_below_big_negatives(ref, size):
    """-inf masking: masked keys get weight 0 even when every unmasked score is far below -1e9 (scores exact)."""
    generator = torch.Generator().manual_seed(55)
    q = torch.randint(-1, 2, (3, 16), generator=generator).double()
    k = torch.randint(-1, 2, (5, 16), generator=generator).double()
    q[:, 0] = size
    k[:, 0] = torch.tensor([4.0, 4.0, -4.0, -4.0, -4.0])  # keys 0 and 1 score about +size, the rest -size
    v = randn(5, 4, seed=56)
    mask = torch.tensor(
        [[False, False, True, True, True], [False, False, True, False, True], [False] * 3 + [True, False]]
    )
    output, weights = ref.scaled_dot_product_attention(q, k, v, mask)
    assert (weights[:, :2] == 0).all()
    assert_close(weights, oracle_weights(q, k, mask), **TIGHT)
    assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TIGHT)
    assert_close(weights.sum(-1), torch.ones(3, dtype=torch.float64), **TIGHT)
    big = (q @ k.T / 4).masked_fill(~mask, -1e9)  # what a -1e9 fill would give: all weight on the masked keys
    assert (torch.softmax(big, dim=-1)[:, :2].sum(-1) > 0.3).all()


def test_attention_fully_masked_rows_are_zero(ref):
    q, k, v = qkv((2, 2), 4, 5, 4, 3, seed=60)
    mask = torch.ones(2, 2, 4, 5, dtype=torch.bool)
    mask[0, 1, 2] = False
    mask[1, :, 0] = False
    mask[1, 0, 3, 2:] = False
    dead = ~mask.any(-1)  # (2, 2, 4)
    assert int(dead.sum()) == 3
    output, weights = ref.scaled_dot_product_attention(q, k, v, mask)
    assert not torch.isnan(output).any()
    assert not torch.isnan(weights).any()
    assert_close(output[dead], torch.zeros(3, 3, dtype=torch.float64), rtol=0, atol=0)
    assert_close(weights[dead], torch.zeros(3, 5, dtype=torch.float64), rtol=0, atol=0)
    live = ~dead
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(output[live], expected[live], **TIGHT)
    assert_close(weights[live], oracle_weights(q, k, mask)[live], **TIGHT)


def test_attention_fully_masked_rows_have_finite_gradients(ref):
    q, k, v = (t.requires_grad_(True) for t in qkv((2,), 3, 4, 4, 2, seed=70))
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 1] = False
    output, weights = ref.scaled_dot_product_attention(q, k, v, mask)
    loss = (output * randn(2, 3, 2, seed=71)).sum() + (weights * randn(2, 3, 4, seed=72)).sum()
    grads = torch.autograd.grad(loss, (q, k, v))
    for grad in grads:
        assert torch.isfinite(grad).all()
    assert (grads[0][1, 1] == 0).all()  # a query that attends to nothing gets no gradient


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "causal+padding"])
def test_attention_gradients_match_torch(ref, masked):
    q, k, v = (t.requires_grad_(True) for t in qkv((2, 2), 5, 5, 4, 3, seed=80))
    mask = torch.tril(torch.ones(5, 5, dtype=torch.bool)) & padding([5, 3], 5) if masked else None
    upstream = randn(2, 2, 5, 3, seed=81)
    output, _ = ref.scaled_dot_product_attention(q, k, v, mask)
    ours = torch.autograd.grad(output, (q, k, v), grad_outputs=upstream)
    theirs = torch.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask), (q, k, v), grad_outputs=upstream
    )
    for name, a, b in zip("qkv", ours, theirs, strict=True):
        assert_close(a, b, **TIGHT, msg=f"d output / d {name}")


def test_attention_weight_gradients_match_torch(ref):
    q, k, v = (t.requires_grad_(True) for t in qkv((3,), 4, 6, 5, 2, seed=90))
    mask = padding([6, 4, 1], 6)[:, 0]  # (B, 1, Tk)
    upstream = randn(3, 4, 6, seed=91)
    _, weights = ref.scaled_dot_product_attention(q, k, v, mask)
    ours = torch.autograd.grad(weights, (q, k), grad_outputs=upstream)
    theirs = torch.autograd.grad(oracle_weights(q, k, mask), (q, k), grad_outputs=upstream)
    for a, b in zip(ours, theirs, strict=True):
        assert_close(a, b, **TIGHT)


def test_attention_gradcheck(ref):
    q, k, v = (t.requires_grad_(True) for t in qkv((2,), 3, 4, 3, 2, seed=100))
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[0, 0, 1:] = False
    mask[1, 2, 0] = False
    mask[1, 1] = False  # a fully masked row: its outputs are constant zero
    assert torch.autograd.gradcheck(lambda a, b, c: ref.scaled_dot_product_attention(a, b, c, mask), (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: ref.scaled_dot_product_attention(a, b, c), (q, k, v))


def test_attention_does_not_modify_inputs(ref):
    q, k, v = qkv((2,), 3, 4, 3, 2, seed=110)
    mask = torch.ones(3, 4, dtype=torch.bool).tril()
    copies = [t.clone() for t in (q, k, v, mask)]
    ref.scaled_dot_product_attention(q, k, v, mask)
    for before, after in zip(copies, (q, k, v, mask), strict=True):
        assert torch.equal(before, after)
