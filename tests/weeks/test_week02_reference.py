"""The week 02 reference against independent oracles: nn.MultiheadAttention and SDPA with enable_gqa."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from tests.helpers import REPO, randn

ref = reference.load(config.load(REPO).week("02"))


def module(d_model, n_heads, n_kv_heads=None, d_head=None, seed=0, dtype=torch.float64):
    layer = ref.MultiHeadAttention(d_model, n_heads, n_kv_heads=n_kv_heads, d_head=d_head).to(dtype)
    with torch.no_grad():
        for i, parameter in enumerate(layer.parameters()):
            parameter.copy_(randn(*parameter.shape, seed=seed + i, dtype=dtype) * 0.5)
    return layer


def oracle_for(layer: torch.nn.Module, d_model: int, n_heads: int, dtype=torch.float64) -> torch.nn.MultiheadAttention:
    oracle = torch.nn.MultiheadAttention(d_model, n_heads, batch_first=True, dtype=dtype)
    with torch.no_grad():
        oracle.in_proj_weight.copy_(torch.cat([layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight]))
        oracle.in_proj_bias.copy_(torch.cat([layer.q_proj.bias, layer.k_proj.bias, layer.v_proj.bias]))
        oracle.out_proj.weight.copy_(layer.out_proj.weight)
        oracle.out_proj.bias.copy_(layer.out_proj.bias)
    return oracle


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_self_attention_with_causal_and_padding_matches_nn_multihead_attention(dtype):
    layer = module(24, 4, seed=1, dtype=dtype)
    oracle = oracle_for(layer, 24, 4, dtype)
    x = randn(3, 7, 24, seed=2, dtype=dtype)
    lengths = torch.tensor([7, 4, 2])
    padding = torch.arange(7)[None, :] < lengths[:, None]  # (B, Tk), True = real token
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    output, weights = layer(x, mask=causal & padding[:, None, None, :])
    expected, expected_weights = oracle(
        x, x, x, attn_mask=~causal, key_padding_mask=~padding, average_attn_weights=False
    )  # nn.MultiheadAttention: True = NOT allowed
    tol = {"rtol": 1e-5, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    torch.testing.assert_close(weights, expected_weights, **tol)
    torch.testing.assert_close(output, expected, **tol)


def test_cross_attention_matches_nn_multihead_attention():
    layer = module(24, 3, seed=3)
    oracle = oracle_for(layer, 24, 3)
    x, context = randn(2, 3, 24, seed=4), randn(2, 6, 24, seed=5)
    padding = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    output, weights = layer(x, context=context, mask=padding[:, None, None, :])
    expected, expected_weights = oracle(x, context, context, key_padding_mask=~padding, average_attn_weights=False)
    torch.testing.assert_close(weights, expected_weights, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(output, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_kv_heads", [1, 2, 3, 6])
def test_grouped_query_matches_sdpa_with_enable_gqa(n_kv_heads):
    d_model, n_heads, d_head = 40, 6, 12  # d_head != d_model / n_heads
    layer = module(d_model, n_heads, n_kv_heads=n_kv_heads, d_head=d_head, seed=6)
    x = randn(2, 5, d_model, seed=7)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()

    def heads(y: torch.Tensor, count: int) -> torch.Tensor:
        return y.view(2, 5, count, d_head).transpose(1, 2)

    q = heads(layer.q_proj(x), n_heads)
    k, v = heads(layer.k_proj(x), n_kv_heads), heads(layer.v_proj(x), n_kv_heads)
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=causal, enable_gqa=True)
    expected = layer.out_proj(attended.transpose(1, 2).reshape(2, 5, n_heads * d_head))
    torch.testing.assert_close(layer(x, mask=causal)[0], expected, rtol=1e-10, atol=1e-10)


def test_repeat_kv_matches_llamas_expand_and_reshape():
    x = randn(2, 3, 4, 5, seed=8)
    n_rep = 2
    llama = x[:, :, None, :, :].expand(2, 3, n_rep, 4, 5).reshape(2, 3 * n_rep, 4, 5)
    torch.testing.assert_close(ref.repeat_kv(x, n_rep), llama, rtol=0, atol=0)


def test_split_and_merge_are_inverse_and_match_a_loop():
    x = randn(2, 3, 12, seed=9)
    split = ref.split_heads(x, 4)
    for head in range(4):
        torch.testing.assert_close(split[:, head], x[:, :, head * 3 : (head + 1) * 3], rtol=0, atol=0)
    torch.testing.assert_close(ref.merge_heads(split), x, rtol=0, atol=0)


@pytest.mark.parametrize(("n_kv_heads", "bias"), [(6, True), (2, True), (1, False)])
def test_kv_param_count_counts_the_module(n_kv_heads, bias):
    layer = ref.MultiHeadAttention(40, 6, n_kv_heads=n_kv_heads, d_head=12, bias=bias)
    counted = sum(p.numel() for name, p in layer.named_parameters() if name.startswith(("k_proj", "v_proj")))
    assert ref.kv_param_count(40, n_kv_heads, 12, bias=bias) == counted


def test_kv_cache_bytes_for_llama_2_7b_shapes():
    assert ref.kv_cache_bytes_per_token(32, 32, 128) == 512 * 1024  # MHA, fp16
    assert ref.kv_cache_bytes_per_token(32, 8, 128) == 128 * 1024  # GQA with 8 groups
    assert ref.kv_cache_bytes_per_token(32, 1, 128) == 16 * 1024  # MQA


def test_fully_masked_rows_give_zeros_and_finite_gradients():
    layer = module(24, 4, seed=10)
    x = randn(1, 3, 24, seed=11).requires_grad_()
    mask = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    mask[0, 0, 1] = False
    output, weights = layer(x, mask=mask)
    assert torch.equal(weights[0, :, 1], torch.zeros(4, 3, dtype=torch.float64))
    output.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_kv_heads_must_divide_query_heads():
    with pytest.raises(ValueError, match="must divide"):
        ref.MultiHeadAttention(40, 6, n_kv_heads=4, d_head=12)


def test_without_bias_matches_nn_multihead_attention():
    layer = ref.MultiHeadAttention(24, 4, bias=False).double()
    assert sorted(layer.state_dict()) == ["k_proj.weight", "out_proj.weight", "q_proj.weight", "v_proj.weight"]
    with torch.no_grad():
        for i, parameter in enumerate(layer.parameters()):
            parameter.copy_(randn(*parameter.shape, seed=20 + i) * 0.5)
    oracle = torch.nn.MultiheadAttention(24, 4, bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        oracle.in_proj_weight.copy_(torch.cat([layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight]))
        oracle.out_proj.weight.copy_(layer.out_proj.weight)
    x = randn(2, 5, 24, seed=30)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    output, weights = layer(x, mask=causal)
    expected, expected_weights = oracle(x, x, x, attn_mask=~causal, average_attn_weights=False)
    torch.testing.assert_close(weights, expected_weights, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(output, expected, rtol=1e-10, atol=1e-10)


def test_per_head_mask_matches_sdpa_with_enable_gqa():
    d_model, n_heads, n_kv_heads, d_head = 40, 6, 2, 12
    layer = module(d_model, n_heads, n_kv_heads=n_kv_heads, d_head=d_head, seed=31)
    x = randn(2, 5, d_model, seed=32)
    mask = torch.rand(2, n_heads, 5, 5, generator=torch.Generator().manual_seed(33)) > 0.4
    mask[..., 0] = True

    def heads(y: torch.Tensor, count: int) -> torch.Tensor:
        return y.view(2, 5, count, d_head).transpose(1, 2)

    q = heads(layer.q_proj(x), n_heads)
    k, v = heads(layer.k_proj(x), n_kv_heads), heads(layer.v_proj(x), n_kv_heads)
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    expected = layer.out_proj(attended.transpose(1, 2).reshape(2, 5, n_heads * d_head))
    torch.testing.assert_close(layer(x, mask=mask)[0], expected, rtol=1e-10, atol=1e-10)


def test_fully_masked_rows_gradients_match_an_oracle_without_those_rows():
    """A fully masked row's output is out_proj.bias, a constant: its gradient is that of the bias alone."""
    layer = module(40, 6, n_kv_heads=3, d_head=12, seed=34)
    x = randn(2, 4, 40, seed=35).requires_grad_()
    mask = torch.ones(2, 1, 4, 4, dtype=torch.bool).tril()
    mask[1, :, 1:3] = False
    upstream = randn(2, 4, 40, seed=36)
    output, _ = layer(x, mask=mask)
    ours = torch.autograd.grad(output, [x, *layer.parameters()], grad_outputs=upstream)
    # the oracle: SDPA on a mask where the dead rows see key 0, then those rows replaced by out_proj.bias
    dead = ~mask.any(-1)  # (2, 1, 4)
    q = layer.q_proj(x).view(2, 4, 6, 12).transpose(1, 2)
    k = layer.k_proj(x).view(2, 4, 3, 12).transpose(1, 2)
    v = layer.v_proj(x).view(2, 4, 3, 12).transpose(1, 2)
    safe = mask.clone()
    safe[..., 0] |= dead
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, enable_gqa=True)
    attended = attended.masked_fill(dead[..., None], 0.0)
    expected = layer.out_proj(attended.transpose(1, 2).reshape(2, 4, 72))
    theirs = torch.autograd.grad(expected, [x, *layer.parameters()], grad_outputs=upstream)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("n_heads", "n_kv_heads"), [(6, 4), (8, 3), (4, 8)])
def test_kv_heads_that_do_not_divide_raise_value_error(n_heads, n_kv_heads):
    with pytest.raises(ValueError):
        ref.MultiHeadAttention(48, n_heads, n_kv_heads=n_kv_heads, d_head=8)


def test_counts_are_python_ints():
    assert type(ref.kv_param_count(40, 3, 12)) is int
    assert type(ref.kv_param_count(4096, 8, 128, bias=False)) is int
    assert type(ref.kv_cache_bytes_per_token(12, 12, 64, bytes_per_value=4)) is int
