"""The week 09 reference against independent oracles.

``F.scaled_dot_product_attention`` (values, LSE from the score matrix, and autograd's
gradients through it) for the naive, tiled and Triton attentions, in float64 and
float32, causal and not, with ``Tq != Tk`` and lengths that are not multiples of
the tiles; ``gradcheck`` of the ``autograd.Function``; the worker's own shape
recorder for the memory claims; Hugging Face's ``LongformerSelfAttention`` (built
offline from a tiny config) for the sliding-window pattern with global tokens;
per-position loops for BigBird's pattern; einsum formulas in float64 for Linformer
and Performer, and Performer's statistics (unbiased features, error shrinking
with the number of features).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from autograder.sandboxed.instruments import ShapeRecorder
from tests.helpers import REPO, randn

WEEK = config.load(REPO).week("09")
SOURCES = reference.carried_sources(WEEK)  # the reference week 02 multihead that flash.py imports
ref = reference.load_file(WEEK.solution_dir / "flash.py", SOURCES)
try:  # import triton now, before any other test's import of it (the interpreter must be on when it is imported)
    triton_ref = reference.load_file(WEEK.solution_dir / "flash_triton.py", SOURCES)
except ImportError as exc:  # no triton (macOS), or another module imported it first
    triton_ref, _ = None, exc
DTYPES = [torch.float32, torch.float64]


def qkv(tq: int, tk: int, d: int = 32, seed: int = 0, dtype: torch.dtype = torch.float64, b: int = 2, h: int = 3):
    return (
        randn(b, h, tq, d, seed=seed, dtype=dtype),
        randn(b, h, tk, d, seed=seed + 1, dtype=dtype),
        randn(b, h, tk, d, seed=seed + 2, dtype=dtype),
    )


def tol(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 2e-6, "atol": 1e-5}


def sdpa_lse(q: torch.Tensor, k: torch.Tensor, causal: bool) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if causal:
        scores = scores.masked_fill(~torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril(), float("-inf"))
    return torch.logsumexp(scores, dim=-1)


# (Tq, Tk, block_q, block_k)
SHAPES = [(100, 75, 16, 16), (75, 100, 16, 32), (33, 47, 16, 16), (64, 64, 16, 16), (1, 75, 16, 16), (100, 100, 32, 8)]


# -- SDPA's causal alignment, which the week follows -----------------------------------------


@pytest.mark.parametrize(("tq", "tk"), [(3, 5), (5, 3)])
def test_sdpa_is_causal_is_top_left_aligned(tq, tk):
    q, k, v = qkv(tq, tk, d=8, seed=1)
    top_left = torch.ones(tq, tk, dtype=torch.bool).tril()
    torch.testing.assert_close(
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
        F.scaled_dot_product_attention(q, k, v, attn_mask=top_left),
        rtol=1e-12,
        atol=1e-12,
    )


# -- naive attention -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("tq", "tk"), [(7, 7), (5, 9), (9, 5)])
def test_naive_attention_matches_sdpa(tq, tk, causal, dtype):
    q, k, v = qkv(tq, tk, d=16, seed=2, dtype=dtype)
    out, lse = ref.naive_attention(q, k, v, causal)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), **tol(dtype))
    torch.testing.assert_close(lse, sdpa_lse(q, k, causal), **tol(dtype))


# -- the tiled forward -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("tq", "tk", "bq", "bk"), SHAPES)
def test_flash_forward_matches_sdpa(tq, tk, bq, bk, causal, dtype):
    q, k, v = qkv(tq, tk, seed=3, dtype=dtype)
    out, lse = ref.flash_attention_forward(q, k, v, causal, bq, bk)
    assert out.dtype == lse.dtype == dtype
    assert lse.shape == (2, 3, tq)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), **tol(dtype))
    torch.testing.assert_close(lse, sdpa_lse(q, k, causal), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_flash_forward_survives_huge_logits(dtype):
    q, k, v = qkv(100, 75, seed=4, dtype=dtype)
    q, k = q * 20, k * 20  # scores of several hundred: exp overflows without the running max
    out, lse = ref.flash_attention_forward(q, k, v, False, 16, 16)
    assert torch.isfinite(out).all()
    assert torch.isfinite(lse).all()
    q64, k64, v64 = q.double(), k.double(), v.double()
    torch.testing.assert_close(out.double(), F.scaled_dot_product_attention(q64, k64, v64), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(lse.double(), sdpa_lse(q64, k64, False), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_flash_forward_with_other_value_width(causal):
    q, k = randn(2, 2, 30, 16, seed=5), randn(2, 2, 21, 16, seed=6)
    v = randn(2, 2, 21, 24, seed=7)  # Dv != D
    out, lse = ref.flash_attention_forward(q, k, v, causal, 8, 16)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lse, sdpa_lse(q, k, causal), rtol=1e-10, atol=1e-10)


# -- the tiled backward and the autograd.Function ------------------------------------------------------


def sdpa_grads(q, k, v, grad_out, causal):
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out = F.scaled_dot_product_attention(*leaves, is_causal=causal)
    return torch.autograd.grad(out, leaves, grad_out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("tq", "tk", "bq", "bk"), SHAPES)
def test_flash_backward_matches_sdpa_autograd(tq, tk, bq, bk, causal, dtype):
    q, k, v = qkv(tq, tk, seed=8, dtype=dtype)
    grad_out = randn(2, 3, tq, 32, seed=9, dtype=dtype)
    out, lse = ref.flash_attention_forward(q, k, v, causal, bq, bk)
    grads = ref.flash_attention_backward(q, k, v, out, lse, grad_out, causal, bq, bk)
    expected = sdpa_grads(q, k, v, grad_out, causal)
    loose = tol(dtype) if dtype == torch.float64 else {"rtol": 1e-5, "atol": 2e-5}  # sums over up to 100 rows
    for name, got, want in zip("qkv", grads, expected, strict=True):
        assert got.shape == want.shape, name
        torch.testing.assert_close(got, want, **loose, msg=lambda m, n=name: f"d{n}: {m}")


@pytest.mark.parametrize("causal", [False, True])
def test_flash_attention_function_gradients_match_sdpa(causal):
    q, k, v = (t.requires_grad_() for t in qkv(100, 75, seed=10))
    grad_out = randn(2, 3, 100, 32, seed=11)
    out = ref.flash_attention(q, k, v, causal, 16, 16)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=causal), rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    for got, want in zip(grads, sdpa_grads(q, k, v, grad_out, causal), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_flash_attention_gradcheck(causal):
    q, k, v = (t.requires_grad_() for t in qkv(11, 7, d=4, seed=12, b=1, h=2))
    assert torch.autograd.gradcheck(lambda a, b, c: ref.flash_attention(a, b, c, causal, 4, 3), (q, k, v))


def test_flash_attention_saves_no_probabilities():
    q, k, v = (t.requires_grad_() for t in qkv(100, 75, seed=13))
    saved: list[tuple[int, ...]] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        ref.flash_attention(q, k, v, False, 16, 16)
    assert sorted(saved) == sorted([(2, 3, 100, 32), (2, 3, 75, 32), (2, 3, 75, 32), (2, 3, 100, 32), (2, 3, 100)])


def traced_shapes(function, *args) -> set[tuple[int, ...]]:
    with ShapeRecorder() as recorder:
        function(*args)
    return recorder.shapes


def holds_matrix(shapes: set[tuple[int, ...]], rows: int, cols: int) -> bool:
    return any(
        size == rows and any(other == cols for j, other in enumerate(shape) if j != i)
        for shape in shapes
        for i, size in enumerate(shape)
    )


@pytest.mark.parametrize("causal", [False, True])
def test_tiled_functions_never_hold_a_score_matrix(causal):
    q, k, v = qkv(100, 75, seed=14)
    grad_out = randn(2, 3, 100, 32, seed=15)
    out, lse = ref.flash_attention_forward(q, k, v, causal, 16, 16)
    assert not holds_matrix(traced_shapes(ref.flash_attention_forward, q, k, v, causal, 16, 16), 100, 75)
    assert not holds_matrix(
        traced_shapes(ref.flash_attention_backward, q, k, v, out, lse, grad_out, causal, 16, 16), 100, 75
    )
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    through_autograd = traced_shapes(
        lambda: torch.autograd.backward(ref.flash_attention(*leaves, causal, 16, 16), grad_out)
    )
    assert (2, 3, 16, 16) in through_autograd  # the recorder sees the tiles ...
    assert not holds_matrix(through_autograd, 100, 75)  # ... and nothing bigger
    assert holds_matrix(traced_shapes(ref.naive_attention, q, k, v, causal), 100, 75)  # the check has teeth


# -- sparse patterns ----------------------------------------------------------------------------------------


def test_sliding_window_mask_by_definition():
    for length, window, global_tokens in [(10, 2, [0]), (13, 1, [0, 7]), (9, 0, []), (12, 3, [11])]:
        mask = ref.sliding_window_mask(length, window, global_tokens)
        assert mask.dtype == torch.bool
        assert mask.shape == (length, length)
        for i in range(length):
            for j in range(length):
                assert bool(mask[i, j]) == (abs(i - j) <= window or i in global_tokens or j in global_tokens)


def test_sliding_window_picture():
    picture = "\n".join("".join("x" if a else "." for a in row) for row in ref.sliding_window_mask(8, 1, [2]).tolist())
    assert picture == "\n".join(
        ["xxx.....", "xxx.....", "xxxxxxxx", "..xxx...", "..xxxx..", "..x.xxx.", "..x..xxx", "..x...xx"]
    )


@pytest.mark.parametrize("global_tokens", [[], [0], [0, 9]])
def test_sliding_window_with_global_tokens_matches_longformer(global_tokens):
    from transformers import LongformerConfig
    from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

    d_model, n_heads, window, length = 24, 4, 2, 16
    config = LongformerConfig(
        hidden_size=d_model,
        num_attention_heads=n_heads,
        attention_window=[2 * window],
        attention_probs_dropout_prob=0.0,
    )
    layer = LongformerSelfAttention(config, layer_id=0).double().eval()
    with torch.no_grad():
        for i, parameter in enumerate(layer.parameters()):
            parameter.copy_(randn(*parameter.shape, seed=20 + i, scale=0.5))
        for name in ("query", "key", "value"):  # global tokens use the same projections as local ones
            getattr(layer, f"{name}_global").load_state_dict(getattr(layer, name).state_dict())
    x = randn(2, length, d_model, seed=30)
    is_global = torch.zeros(2, length, dtype=torch.bool)
    is_global[:, global_tokens] = True
    attention_mask = is_global.double() * 10000.0  # Longformer's encoding: 0 local, +10000 global
    with torch.no_grad():
        (theirs,) = layer(
            x,
            attention_mask=attention_mask,
            is_index_masked=torch.zeros(2, length, dtype=torch.bool),
            is_index_global_attn=is_global,
            is_global_attn=bool(global_tokens),
        )

    def heads(linear: torch.nn.Linear) -> torch.Tensor:
        return linear(x).view(2, length, n_heads, d_model // n_heads).transpose(1, 2)

    with torch.no_grad():
        mask = ref.sliding_window_mask(length, window, global_tokens)
        ours = ref.masked_attention(heads(layer.query), heads(layer.key), heads(layer.value), mask)
    # Longformer takes its softmax in float32 whatever the input dtype: compare to float32 precision.
    torch.testing.assert_close(ours.transpose(1, 2).reshape(2, length, d_model), theirs, rtol=1e-5, atol=1e-5)


def bigbird_by_loops(length, block, window_blocks, n_random, n_global, seed) -> torch.Tensor:
    """The pattern position by position, from the docstring's rules."""
    n_blocks = math.ceil(length / block)
    generator = torch.Generator().manual_seed(seed)
    chosen: dict[int, set[int]] = {}
    for a in range(n_global, n_blocks):
        candidates = [b for b in range(n_blocks) if abs(a - b) > window_blocks and b >= n_global]
        order = torch.randperm(len(candidates), generator=generator).tolist()
        chosen[a] = {candidates[i] for i in order[:n_random]}
    mask = torch.zeros(length, length, dtype=torch.bool)
    for i in range(length):
        for j in range(length):
            a, b = i // block, j // block
            mask[i, j] = abs(a - b) <= window_blocks or a < n_global or b < n_global or b in chosen.get(a, set())
    return mask


BIGBIRD = [(30, 4, 1, 2, 1, 0), (30, 4, 1, 2, 1, 1), (64, 8, 1, 1, 1, 5), (50, 5, 0, 3, 2, 7), (17, 4, 1, 10, 0, 3)]


@pytest.mark.parametrize("args", BIGBIRD)
def test_bigbird_mask_matches_loops(args):
    mask = ref.bigbird_mask(*args)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, bigbird_by_loops(*args))


def test_bigbird_rows_have_the_promised_blocks():
    length, block, window_blocks, n_random, n_global = 80, 5, 1, 2, 1
    mask = ref.bigbird_mask(length, block, window_blocks, n_random, n_global, seed=3)
    blocks = mask[::block, ::block]  # one position per block
    for a in range(n_global, 16):
        window = sum(1 for b in range(16) if abs(a - b) <= window_blocks)
        extra = int(blocks[a].sum()) - window - (n_global if a > window_blocks else 0)
        assert extra == n_random
    assert blocks[:n_global].all()
    assert blocks[:, :n_global].all()
    assert torch.equal(mask, ref.bigbird_mask(length, block, window_blocks, n_random, n_global, seed=3))
    assert not torch.equal(mask, ref.bigbird_mask(length, block, window_blocks, n_random, n_global, seed=4))


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_attention_matches_sdpa_with_the_masks(dtype):
    q, k, v = qkv(30, 30, d=16, seed=40, dtype=dtype)
    for mask in (ref.sliding_window_mask(30, 3, [0, 17]), ref.bigbird_mask(30, 4, 1, 2, 1, seed=1)):
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # SDPA's bool mask: True = attend
        torch.testing.assert_close(ref.masked_attention(q, k, v, mask), expected, **tol(dtype))


def test_masked_attention_gives_zeros_for_rows_without_keys():
    q, k, v = qkv(4, 6, d=8, seed=41)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[2] = False
    out = ref.masked_attention(q, k, v, mask)
    assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
    torch.testing.assert_close(out[:, :, [0, 1, 3]], F.scaled_dot_product_attention(q, k, v)[:, :, [0, 1, 3]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("length", "window", "block"), [(100, 5, 16), (37, 0, 8), (20, 30, 16), (64, 16, 16)])
def test_sliding_window_attention_matches_sdpa_with_the_band(length, window, block, dtype):
    q, k, v = qkv(length, length, d=16, seed=42, dtype=dtype)
    band = ref.sliding_window_mask(length, window)
    out = ref.sliding_window_attention(q, k, v, window, block)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=band), **tol(dtype))
    if block + 2 * window < length:
        assert not holds_matrix(traced_shapes(ref.sliding_window_attention, q, k, v, window, block), length, length)


# -- Linformer -------------------------------------------------------------------------------------------


def linformer_by_einsum(layer, x: torch.Tensor) -> torch.Tensor:
    b, t, d = x.shape
    h = layer.n_heads
    q = F.linear(x, layer.q_proj.weight, layer.q_proj.bias).view(b, t, h, d // h)
    k = F.linear(x, layer.k_proj.weight, layer.k_proj.bias).view(b, t, h, d // h)
    v = F.linear(x, layer.v_proj.weight, layer.v_proj.bias).view(b, t, h, d // h)
    k_low = torch.einsum("kt,bthe->bhke", layer.E[:, :t], k)
    v_low = torch.einsum("kt,bthe->bhke", layer.F[:, :t], v)
    weights = torch.softmax(torch.einsum("bthe,bhke->bhtk", q, k_low) / math.sqrt(d // h), dim=-1)
    out = torch.einsum("bhtk,bhke->bthe", weights, v_low).reshape(b, t, d)
    return F.linear(out, layer.out_proj.weight, layer.out_proj.bias)


@pytest.mark.parametrize("length", [20, 13])
def test_linformer_matches_einsum_formula(length):
    torch.manual_seed(0)
    layer = ref.Linformer(24, 4, seq_len=20, k_proj_dim=6).double()
    with torch.no_grad():
        for i, parameter in enumerate(layer.parameters()):
            parameter.copy_(randn(*parameter.shape, seed=50 + i, scale=0.5))
    x = randn(3, length, 24, seed=60)
    torch.testing.assert_close(layer(x), linformer_by_einsum(layer, x), rtol=1e-10, atol=1e-10)


def test_linformer_parameters():
    layer = ref.Linformer(24, 4, seq_len=20, k_proj_dim=6)
    shapes = {name: tuple(p.shape) for name, p in layer.state_dict().items()}
    assert shapes == {
        **{f"{p}_proj.weight": (24, 24) for p in ("q", "k", "v", "out")},
        **{f"{p}_proj.bias": (24,) for p in ("q", "k", "v", "out")},
        "E": (6, 20),
        "F": (6, 20),
    }
    assert 0.25 < layer.E.std().item() * math.sqrt(6) < 4  # N(0, 1/K)


def test_linformer_with_identity_projection_is_exact_attention():
    """With K = T and E = F = I, nothing is compressed: Linformer is ordinary multi-head attention."""
    layer = ref.Linformer(24, 4, seq_len=9, k_proj_dim=9).double()
    oracle = torch.nn.MultiheadAttention(24, 4, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        layer.E.copy_(torch.eye(9))
        layer.F.copy_(torch.eye(9))
        oracle.in_proj_weight.copy_(torch.cat([layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight]))
        oracle.in_proj_bias.copy_(torch.cat([layer.q_proj.bias, layer.k_proj.bias, layer.v_proj.bias]))
        oracle.out_proj.load_state_dict(layer.out_proj.state_dict())
    x = randn(2, 9, 24, seed=61)
    torch.testing.assert_close(layer(x), oracle(x, x, x)[0], rtol=1e-10, atol=1e-10)


# -- Performer ---------------------------------------------------------------------------------------------


def test_random_projection_is_the_documented_draw():
    expected = torch.randn(16, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(ref.random_projection(16, 8, seed=3), expected)


def test_favor_features_formula():
    x = randn(2, 5, 8, seed=70, scale=0.5)
    w = ref.random_projection(32, 8, seed=1)
    expected = torch.exp(torch.einsum("btd,md->btm", x, w) - 0.5 * (x**2).sum(-1, keepdim=True)) / math.sqrt(32)
    features = ref.favor_features(x, w)
    torch.testing.assert_close(features, expected, rtol=1e-12, atol=1e-15)
    assert (features > 0).all()


def test_favor_features_estimate_the_softmax_kernel_without_bias():
    x, y = randn(6, seed=71, scale=0.4), randn(6, seed=72, scale=0.4)
    w = ref.random_projection(400_000, 6, seed=2)
    estimate = (ref.favor_features(x[None], w) * ref.favor_features(y[None], w)).sum() * 1.0
    # 400,000 features: the relative standard error is about 0.3 %; allow 2 %.
    assert estimate.item() == pytest.approx(math.exp(float(x @ y)), rel=0.02)


def performer_by_formula(q, k, v, w) -> torch.Tensor:
    d = q.size(-1)
    qs, ks = q / d**0.25, k / d**0.25
    phi_q = torch.exp(torch.einsum("bhtd,md->bhtm", qs, w) - 0.5 * (qs**2).sum(-1, keepdim=True))
    phi_k = torch.exp(torch.einsum("bhsd,md->bhsm", ks, w) - 0.5 * (ks**2).sum(-1, keepdim=True))
    weights = torch.einsum("bhtm,bhsm->bhts", phi_q, phi_k)  # the quadratic form: fine for an oracle
    return weights @ v / weights.sum(-1, keepdim=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_performer_matches_quadratic_formula(dtype):
    q, k, v = qkv(30, 21, d=16, seed=80, dtype=dtype)
    w = ref.random_projection(64, 16, seed=4).to(dtype)
    torch.testing.assert_close(ref.performer_attention(q, k, v, w), performer_by_formula(q, k, v, w), **tol(dtype))


def test_performer_holds_no_score_matrix():
    q, k, v = qkv(100, 75, d=16, seed=81)
    w = ref.random_projection(64, 16, seed=5)
    assert not holds_matrix(traced_shapes(ref.performer_attention, q, k, v, w), 100, 75)


def test_performer_error_shrinks_with_more_features():
    q, k, v = qkv(20, 20, d=16, seed=82)
    q, k = q * 0.5, k * 0.5  # moderate scores: with peaked softmaxes the estimator's heavy tails need far more features
    exact = F.scaled_dot_product_attention(q, k, v)
    errors = {}
    for m in (16, 256, 2048):
        runs = [ref.performer_attention(q, k, v, ref.random_projection(m, 16, seed)) for seed in range(8)]
        errors[m] = sum((out - exact).abs().mean().item() for out in runs) / len(runs)
    # Monte Carlo: the error falls like 1 / sqrt(M), so by about 4x and 2.8x; ask for 1.6x each time.
    assert errors[256] < errors[16] / 1.6
    assert errors[2048] < errors[256] / 1.6
    assert errors[2048] < 0.05


# -- Triton, in the interpreter on this CPU -------------------------------------------------------------------


needs_triton = pytest.mark.skipif(triton_ref is None, reason="triton could not be imported for the interpreter")


@needs_triton
@pytest.mark.parametrize(
    ("tq", "tk", "d", "causal"), [(40, 40, 16, False), (33, 33, 32, True), (33, 47, 64, False), (47, 33, 32, True)]
)
def test_triton_forward_matches_sdpa(tq, tk, d, causal):
    q, k, v = qkv(tq, tk, d=d, seed=90, dtype=torch.float32, b=1, h=2)
    out, lse = triton_ref.run_triton(q, k, v, causal, 16, 16)
    assert out.dtype == torch.float32
    assert lse.dtype == torch.float32
    q64, k64, v64 = q.double(), k.double(), v.double()
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q64, k64, v64, is_causal=causal).float(), rtol=2e-6, atol=1e-5
    )
    torch.testing.assert_close(lse, sdpa_lse(q64, k64, causal).float(), rtol=2e-6, atol=1e-5)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_triton_half_inputs_are_upcast(dtype):
    q, k, v = qkv(33, 40, d=32, seed=91, dtype=dtype, b=1, h=2)
    out, lse = triton_ref.run_triton(q, k, v, True, 16, 16)
    assert out.dtype == dtype
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=True)
    torch.testing.assert_close(out, expected.to(dtype))  # rounding of the output only: torch's per-dtype defaults
    torch.testing.assert_close(lse, sdpa_lse(q.double(), k.double(), True).float(), rtol=2e-6, atol=1e-5)
