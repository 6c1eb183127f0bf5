"""The week 03 reference against independent oracles: float64 formulas and `transformers` (T5, Llama, BLOOM, DistilBERT).

The `transformers` modules are built from small configs, offline: no download.
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, T5Config
from transformers.models.bloom.modeling_bloom import build_alibi_tensor
from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb
from transformers.models.t5.modeling_t5 import T5Attention

from autograder import config, reference
from tests.helpers import REPO, randn

ref = reference.load(config.load(REPO).week("03"))


# -- sinusoidal ----------------------------------------------------------------------------


@pytest.mark.parametrize("d_model", [2, 6, 64])
def test_sinusoidal_matches_the_papers_formula_in_float64(d_model):
    positions = torch.arange(5, 205, dtype=torch.float64)
    got = ref.sinusoidal_encoding(positions, d_model)
    expected = torch.tensor(
        [
            [(math.sin if j % 2 == 0 else math.cos)(p / 10000 ** ((j - j % 2) / d_model)) for j in range(d_model)]
            for p in positions.tolist()
        ],
        dtype=torch.float64,
    )
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_sinusoidal_matches_distilbert():
    out = torch.empty(300, 48)
    create_sinusoidal_embeddings(300, 48, out)
    got = ref.sinusoidal_encoding(torch.arange(300, dtype=torch.float64), 48)
    torch.testing.assert_close(got.float(), out, rtol=0, atol=1e-6)


def test_sinusoidal_float32_has_positions_dtype():
    got = ref.sinusoidal_encoding(torch.arange(10, dtype=torch.float32), 8, base=100.0)
    assert got.dtype == torch.float32
    expected = ref.sinusoidal_encoding(torch.arange(10, dtype=torch.float64), 8, base=100.0)
    torch.testing.assert_close(got, expected.float())


# -- learned -------------------------------------------------------------------------------


def test_learned_embedding_adds_rows_from_offset_like_nn_embedding():
    layer = ref.LearnedPositionalEmbedding(40, 6).double()
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert 0.01 < layer.weight.std().item() < 0.03
    oracle = torch.nn.Embedding(40, 6, dtype=torch.float64)
    oracle.weight.data.copy_(layer.weight.data)
    x = randn(2, 7, 6, seed=1)
    torch.testing.assert_close(layer(x, offset=30), x + oracle(torch.arange(30, 37))[None])
    with pytest.raises(ValueError):
        layer(x, offset=34)


@pytest.mark.parametrize(("length", "offset"), [(17, 34), (51, 0), (1, 50)])
def test_learned_embedding_past_the_table_raises_value_error(length, offset):
    layer = ref.LearnedPositionalEmbedding(50, 12)
    with pytest.raises(ValueError):
        layer(torch.zeros(3, length, 12), offset=offset)
    layer(torch.zeros(3, 50 - offset if offset < 50 else 1, 12), offset=min(offset, 49))  # the last rows are fine


def test_learned_embedding_init_is_normal_with_std_0_02():
    weight = ref.LearnedPositionalEmbedding(4096, 64).weight.detach()
    assert weight.dtype == torch.float32
    assert abs(float(weight.double().std()) - 0.02) < 0.0006
    assert abs(float(weight.double().mean())) < 3e-4
    assert 0.035 < float((weight.abs() > 0.04).double().mean()) < 0.056  # normal: 4.55% beyond 2 std


# -- T5 relative bias ----------------------------------------------------------------------


@pytest.mark.parametrize(("num_buckets", "max_distance"), [(32, 128), (16, 20), (64, 256), (8, 16)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_bucket_matches_t5(num_buckets, max_distance, bidirectional):
    relative = torch.arange(-1000, 1001)
    got = ref.relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    expected = T5Attention._relative_position_bucket(
        relative, bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    )
    assert got.dtype == torch.long
    assert torch.equal(got, expected)


@pytest.mark.parametrize(("is_decoder", "q_len", "k_len"), [(False, 150, 150), (False, 140, 200), (True, 130, 130)])
def test_relative_bias_matches_t5_compute_bias(is_decoder, q_len, k_len):
    config = T5Config(d_model=48, d_kv=8, num_heads=6, is_decoder=is_decoder)
    oracle = T5Attention(config, has_relative_attention_bias=True)
    layer = ref.RelativePositionBias(6, bidirectional=not is_decoder)
    layer.relative_attention_bias.load_state_dict(oracle.relative_attention_bias.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer(q_len, k_len), oracle.compute_bias(q_len, k_len), rtol=0, atol=0)


def test_bucket_of_int32_input_of_any_shape_is_long():
    relative = torch.arange(-300, 300, 10, dtype=torch.int32).reshape(3, 4, 5)
    got = ref.relative_position_bucket(relative, True, 32, 128)
    assert got.dtype == torch.long
    assert got.shape == (3, 4, 5)
    expected = T5Attention._relative_position_bucket(
        relative.long(), bidirectional=True, num_buckets=32, max_distance=128
    )
    assert torch.equal(got, expected)


@pytest.mark.parametrize(
    ("num_buckets", "max_distance", "is_decoder", "q_len", "k_len"), [(16, 20, True, 30, 45), (8, 64, False, 70, 90)]
)
def test_relative_bias_with_other_configs_matches_t5(num_buckets, max_distance, is_decoder, q_len, k_len):
    config = T5Config(
        d_model=32,
        d_kv=8,
        num_heads=4,
        is_decoder=is_decoder,
        relative_attention_num_buckets=num_buckets,
        relative_attention_max_distance=max_distance,
    )
    oracle = T5Attention(config, has_relative_attention_bias=True)
    layer = ref.RelativePositionBias(4, num_buckets, max_distance, bidirectional=not is_decoder)
    layer.relative_attention_bias.load_state_dict(oracle.relative_attention_bias.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer(q_len, k_len), oracle.compute_bias(q_len, k_len), rtol=0, atol=0)


# -- RoPE ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("d_head", "base"), [(32, 10000.0), (16, 500000.0)])
def test_rope_matches_llama(d_head, base):
    config = LlamaConfig(hidden_size=3 * d_head, num_attention_heads=3, head_dim=d_head, rope_theta=base)
    rotary = LlamaRotaryEmbedding(config)
    q, k = randn(2, 3, 150, d_head, seed=2, dtype=torch.float32), randn(2, 3, 150, d_head, seed=3, dtype=torch.float32)
    position_ids = torch.arange(150)[None].expand(2, -1)
    cos_oracle, sin_oracle = rotary(q, position_ids)
    q_oracle, k_oracle = apply_rotary_pos_emb(q, k, cos_oracle, sin_oracle)
    cos, sin = ref.rope_cos_sin(torch.arange(150, dtype=torch.float32), d_head, base=base)
    # Llama computes its frequencies as 1 / base**x in float32; angles up to 150 then differ in the last bits.
    torch.testing.assert_close(cos, cos_oracle[0], rtol=0, atol=5e-5)
    torch.testing.assert_close(sin, sin_oracle[0], rtol=0, atol=5e-5)
    torch.testing.assert_close(ref.apply_rope(q, cos_oracle[:, None], sin_oracle[:, None]), q_oracle)
    torch.testing.assert_close(ref.apply_rope(k, cos, sin), k_oracle, rtol=0, atol=5e-4)


def test_rope_matches_pairwise_rotation_in_float64():
    """RoPE as the paper writes it: rotate each pair (x_i, x_{i+Dh/2}) by p * base^(-2i/Dh)."""
    d_head, x = 8, randn(1, 2, 9, 8, seed=4)
    positions = torch.arange(9, dtype=torch.float64) + 100
    cos, sin = ref.rope_cos_sin(positions, d_head)
    got = ref.apply_rope(x, cos, sin)
    expected = x.clone()
    for t, p in enumerate(positions.tolist()):
        for i in range(d_head // 2):
            angle = p * 10000 ** (-2 * i / d_head)
            a, b = x[..., t, i], x[..., t, i + d_head // 2]
            expected[..., t, i] = a * math.cos(angle) - b * math.sin(angle)
            expected[..., t, i + d_head // 2] = a * math.sin(angle) + b * math.cos(angle)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_rope_on_a_two_dim_input_matches_the_four_dim_one():
    cos, sin = ref.rope_cos_sin(torch.arange(5, 25, dtype=torch.float64), 16)
    x = randn(20, 16, seed=5)
    torch.testing.assert_close(ref.apply_rope(x, cos, sin), ref.apply_rope(x[None, None], cos, sin)[0, 0])
    x4 = randn(2, 3, 20, 16, seed=6)
    torch.testing.assert_close(
        ref.apply_rope(x4, cos.expand(2, 1, 20, 16), sin.expand(2, 1, 20, 16)), ref.apply_rope(x4, cos, sin)
    )


def test_rope_scores_depend_only_on_relative_position():
    q, k = randn(1, 2, 20, 16, seed=5), randn(1, 2, 20, 16, seed=6)
    positions = torch.arange(20, dtype=torch.float64)
    scores = [
        ref.apply_rope(q, *ref.rope_cos_sin(positions + shift, 16))
        @ ref.apply_rope(k, *ref.rope_cos_sin(positions + shift, 16)).transpose(-2, -1)
        for shift in (0.0, 37.0, 1000.0)
    ]
    torch.testing.assert_close(scores[1], scores[0])
    torch.testing.assert_close(scores[2], scores[0])
    rotated = ref.apply_rope(q, *ref.rope_cos_sin(positions, 16))
    torch.testing.assert_close(rotated.norm(dim=-1), q.norm(dim=-1))  # a rotation keeps lengths


# -- ALiBi ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n_heads", [1, 2, 3, 5, 6, 8, 12, 16, 24, 40])
def test_alibi_slopes_match_bloom(n_heads):
    bloom = build_alibi_tensor(torch.ones(1, 3), n_heads, torch.float32).reshape(n_heads, 3)[:, 1]  # slope * 1
    got = ref.alibi_slopes(n_heads)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, bloom)


def test_alibi_slopes_of_eight_heads_are_the_papers():
    torch.testing.assert_close(ref.alibi_slopes(8), torch.tensor([2.0**-i for i in range(1, 9)]))


@pytest.mark.parametrize(("q_len", "k_len"), [(7, 7), (3, 10)])
def test_alibi_bias_gives_blooms_causal_attention(q_len, k_len):
    """BLOOM adds slope * key_position and relies on softmax ignoring per-row constants; under a causal mask both agree."""
    n_heads = 6
    slopes = ref.alibi_slopes(n_heads).double()
    scores = randn(n_heads, q_len, k_len, seed=7)
    causal = torch.ones(k_len, k_len, dtype=torch.bool).tril()[k_len - q_len :]
    bloom = build_alibi_tensor(torch.ones(1, k_len), n_heads, torch.float64).reshape(n_heads, 1, k_len)
    ours = ref.alibi_bias(slopes, q_len, k_len)
    assert ours.shape == (n_heads, q_len, k_len)
    weights = (scores + ours).masked_fill(~causal, float("-inf")).softmax(-1)
    expected = (scores + bloom).masked_fill(~causal, float("-inf")).softmax(-1)
    torch.testing.assert_close(weights, expected)


def test_alibi_bias_is_minus_slope_times_distance():
    slopes = torch.tensor([0.5, 0.25], dtype=torch.float64)
    bias = ref.alibi_bias(slopes, 2, 4)
    expected = torch.tensor([[[-1.0, -0.5, 0.0, -0.5], [-1.5, -1.0, -0.5, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(bias, torch.cat([expected, expected / 2]))
