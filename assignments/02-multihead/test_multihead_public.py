"""Public tests for week 02: run them with `course check 02`.

They compare your module with PyTorch's own nn.MultiheadAttention and
F.scaled_dot_product_attention(enable_gqa=True), using the same weights. The
hidden tests check more cases (cross-attention, padding, MQA, float32, gradients).
"""

import torch
import torch.nn.functional as F

from autograder import assert_close, expect_sequence


def weights(d_model, n_heads, n_kv_heads, d_head, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = {
        "q_proj.weight": (n_heads * d_head, d_model),
        "q_proj.bias": (n_heads * d_head,),
        "k_proj.weight": (n_kv_heads * d_head, d_model),
        "k_proj.bias": (n_kv_heads * d_head,),
        "v_proj.weight": (n_kv_heads * d_head, d_model),
        "v_proj.bias": (n_kv_heads * d_head,),
        "out_proj.weight": (d_model, n_heads * d_head),
        "out_proj.bias": (d_model,),
    }
    return {name: torch.randn(*shape, generator=generator, dtype=torch.float64) * 0.5 for name, shape in shapes.items()}


def test_split_and_merge_heads(student):
    x = torch.arange(2 * 3 * 8, dtype=torch.float64).reshape(2, 3, 8)
    heads = student.split_heads(x, 2)
    assert_close(
        heads, x.view(2, 3, 2, 4).transpose(1, 2), name="split_heads(x, 2)", hint="(B, T, H*Dh) -> (B, H, T, Dh)"
    )
    assert_close(student.merge_heads(heads), x, name="merge_heads(split_heads(x, 2))")


def test_repeat_kv_small(student):
    x = torch.arange(2 * 2 * 3 * 4, dtype=torch.float64).reshape(2, 2, 3, 4)
    assert_close(student.repeat_kv(x, 3), x.repeat_interleave(3, dim=1), name="repeat_kv(x, 3)")


def test_matches_nn_multihead_attention(student):
    state = weights(24, 4, 4, 6)
    mine = student.MultiHeadAttention(24, 4)
    mine.double()
    mine.load_state_dict(state)
    oracle = torch.nn.MultiheadAttention(24, 4, batch_first=True, dtype=torch.float64)
    oracle.in_proj_weight.data = torch.cat([state[f"{p}_proj.weight"] for p in "qkv"])
    oracle.in_proj_bias.data = torch.cat([state[f"{p}_proj.bias"] for p in "qkv"])
    oracle.out_proj.weight.data, oracle.out_proj.bias.data = state["out_proj.weight"], state["out_proj.bias"]
    x = torch.randn(2, 5, 24, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    expected, expected_weights = oracle(x, x, x, attn_mask=~causal, average_attn_weights=False)  # its True = blocked
    output, attn = expect_sequence(mine(x, mask=causal), 2, name="MultiHeadAttention")
    assert_close(attn, expected_weights, name="weights (B, H, Tq, Tk)")
    assert_close(output, expected, name="output", hint="q/k/v projections, split, attention, merge, out_proj")


def test_grouped_query_matches_sdpa(student):
    d_model, n_heads, n_kv_heads, d_head = 40, 6, 2, 12
    state = weights(d_model, n_heads, n_kv_heads, d_head, seed=2)
    mine = student.MultiHeadAttention(d_model, n_heads, n_kv_heads=n_kv_heads, d_head=d_head)
    mine.double()
    mine.load_state_dict(state)
    x = torch.randn(2, 5, d_model, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def project(name, heads):
        y = F.linear(x, state[f"{name}.weight"], state[f"{name}.bias"])
        return y.view(2, 5, heads, d_head).transpose(1, 2)

    q, k, v = project("q_proj", n_heads), project("k_proj", n_kv_heads), project("v_proj", n_kv_heads)
    attended = F.scaled_dot_product_attention(q, k, v, enable_gqa=True).transpose(1, 2).reshape(2, 5, n_heads * d_head)
    expected = F.linear(attended, state["out_proj.weight"], state["out_proj.bias"])
    output, _ = expect_sequence(mine(x), 2, name="MultiHeadAttention")
    assert_close(
        output,
        expected,
        name="grouped-query output (6 query heads, 2 key/value heads)",
        hint="query head h uses key/value head h // 3: repeat_interleave, not repeat",
    )


def test_kv_cache_of_a_7b_model(student):
    got = student.kv_cache_bytes_per_token(32, 32, 128, bytes_per_value=2)
    assert got == 524_288, (
        f"kv_cache_bytes_per_token(32 layers, 32 kv heads, d_head 128, fp16) is {got!r}, expected 512 KiB"
    )
