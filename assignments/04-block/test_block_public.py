"""Public tests for week 04: run them with `course check 04`.

They compare your code with PyTorch's own F.gelu, F.layer_norm, nn.RMSNorm,
F.silu and nn.TransformerEncoderLayer, using the same weights. The hidden tests
check more cases (float32, other shapes and eps, causal masks, dropout statistics,
gradients, the forbidden built-ins).
"""

import torch
import torch.nn.functional as F

from autograder import assert_close, assert_equal


def rand(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def test_gelu_matches_torch(student):
    x = torch.linspace(-5, 5, 41, dtype=torch.float64)
    assert_close(student.gelu(x), F.gelu(x), name="gelu(x)", hint="0.5 x (1 + erf(x / sqrt(2)))")
    assert_close(
        student.gelu(x, approximate="tanh"),
        F.gelu(x, approximate="tanh"),
        name="gelu(x, approximate='tanh')",
        hint="0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))",
    )


def test_swiglu_matches_its_formula(student):
    d_model, d_ff = 6, 10
    state = {
        "fc1.weight": rand(d_ff, d_model, seed=1, scale=0.5),
        "fc1.bias": rand(d_ff, seed=2, scale=0.5),
        "fc_gate.weight": rand(d_ff, d_model, seed=3, scale=0.5),
        "fc_gate.bias": rand(d_ff, seed=4, scale=0.5),
        "fc2.weight": rand(d_model, d_ff, seed=5, scale=0.5),
        "fc2.bias": rand(d_model, seed=6, scale=0.5),
    }
    layer = student.FeedForward(d_model, d_ff, activation="swiglu")
    layer.double()
    layer.load_state_dict(state)
    x = rand(2, 3, d_model, seed=7)

    def linear(name, h):
        return F.linear(h, state[f"{name}.weight"], state[f"{name}.bias"])

    expected = linear("fc2", F.silu(linear("fc_gate", x)) * linear("fc1", x))
    assert_close(layer(x), expected, name="FeedForward(swiglu)", hint="fc2(silu(fc_gate(x)) * fc1(x))")


def test_layer_norm_matches_torch(student):
    weight, bias = 1 + rand(8, seed=8, scale=0.5), rand(8, seed=9, scale=0.5)
    layer = student.LayerNorm(8, eps=0.1)
    layer.double()
    layer.load_state_dict({"weight": weight, "bias": bias})
    x = rand(2, 3, 8, seed=10, scale=2.0)
    expected = F.layer_norm(x, (8,), weight, bias, eps=0.1)
    assert_close(
        layer(x), expected, name="LayerNorm(8, eps=0.1)", hint="the biased variance, eps inside the square root"
    )


def test_rms_norm_matches_torch(student):
    oracle = torch.nn.RMSNorm(8, eps=0.1, dtype=torch.float64)
    with torch.no_grad():
        oracle.weight.copy_(1 + rand(8, seed=11, scale=0.5))
    layer = student.RMSNorm(8, eps=0.1)
    layer.double()
    layer.load_state_dict(oracle.state_dict())
    x = rand(2, 3, 8, seed=12, scale=2.0)
    assert_close(layer(x), oracle(x).detach(), name="RMSNorm(8, eps=0.1)", hint="no mean subtracted, no bias")


def test_dropout_basics(student):
    x = rand(4, 5, seed=13) + 3.0  # no zeros
    layer = student.Dropout(0.5)
    layer.eval()
    assert_equal(layer(x), x, name="Dropout(0.5) in eval mode", hint="the identity in eval mode")
    out = student.Dropout(0.25)(x)
    assert_close(
        out,
        torch.where(out == 0, 0.0, x / 0.75),
        name="Dropout(0.25) in training mode",
        hint="kept elements are divided by 1 - p",
    )
    assert_close(student.Dropout(1.0)(x), torch.zeros_like(x), name="Dropout(1.0) in training mode")


def block_against_pytorch(student, norm_first):
    d_model, n_heads, d_ff = 12, 3, 20
    mine = student.TransformerBlock(d_model, n_heads, d_ff, dropout=0.1, norm_first=norm_first, eps=0.01)
    mine.double()
    oracle = torch.nn.TransformerEncoderLayer(
        d_model, n_heads, d_ff, dropout=0.1, batch_first=True, norm_first=norm_first, layer_norm_eps=0.01
    ).double()
    oracle.eval()
    state = {name: rand(*p.shape, seed=i, scale=0.5) for i, (name, p) in enumerate(oracle.state_dict().items())}
    oracle.load_state_dict(state)
    q, k, v = state["self_attn.in_proj_weight"].chunk(3)
    qb, kb, vb = state["self_attn.in_proj_bias"].chunk(3)
    mine.load_state_dict(
        {
            "attn.q_proj.weight": q,
            "attn.q_proj.bias": qb,
            "attn.k_proj.weight": k,
            "attn.k_proj.bias": kb,
            "attn.v_proj.weight": v,
            "attn.v_proj.bias": vb,
            "attn.out_proj.weight": state["self_attn.out_proj.weight"],
            "attn.out_proj.bias": state["self_attn.out_proj.bias"],
            "ff.fc1.weight": state["linear1.weight"],
            "ff.fc1.bias": state["linear1.bias"],
            "ff.fc2.weight": state["linear2.weight"],
            "ff.fc2.bias": state["linear2.bias"],
            "norm1.weight": 1 + state["norm1.weight"],
            "norm1.bias": state["norm1.bias"],
            "norm2.weight": 1 + state["norm2.weight"],
            "norm2.bias": state["norm2.bias"],
        }
    )
    with torch.no_grad():
        oracle.norm1.weight.add_(1.0)
        oracle.norm2.weight.add_(1.0)
    mine.eval()
    x = rand(2, 5, d_model, seed=50)
    real = torch.arange(5)[None, :] < torch.tensor([[5], [3]])  # (B, T), True = a real token
    expected = oracle(x, src_key_padding_mask=~real).detach()  # its mask: True = NOT allowed
    assert_close(
        mine(x, mask=real[:, None, None, :]),
        expected,
        name=f"TransformerBlock({'pre' if norm_first else 'post'}-norm) against nn.TransformerEncoderLayer",
        hint="pre-norm: x + attn(norm1(x)), then + ff(norm2(.)); post-norm: norm1(x + attn(x)), then norm2(. + ff(.))",
    )


def test_pre_norm_block_matches_pytorch(student):
    block_against_pytorch(student, norm_first=True)


def test_post_norm_block_matches_pytorch(student):
    block_against_pytorch(student, norm_first=False)
