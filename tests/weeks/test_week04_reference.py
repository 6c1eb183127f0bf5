"""The week 04 reference against independent oracles.

F.gelu, F.layer_norm / nn.LayerNorm, nn.RMSNorm, F.silu, Llama's MLP and RMSNorm,
nn.TransformerEncoderLayer (pre- and post-norm, its mask polarity flipped) and a
one-layer GPT-2 from ``transformers`` (built offline from a config), plus
gradcheck for the hand-written norms and GELU, and dropout's statistics.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import config, reference
from tests.helpers import REPO, randn

ref = reference.load(config.load(REPO).week("04"))  # block.py, with the reference week 02 multihead it imports

DTYPES = [torch.float32, torch.float64]


def tolerance(dtype: torch.dtype, loose: bool = False) -> dict[str, float]:
    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-10}
    # whole modules in float32: different kernels sum in different orders
    return {"rtol": 1e-5, "atol": 1e-4} if loose else {"rtol": 1.3e-6, "atol": 1e-5}


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter ~ N(0, 0.5^2); norm weights 1 + N(0, 0.5^2)."""
    with torch.no_grad():
        for i, (name, parameter) in enumerate(module.named_parameters()):
            is_norm_weight = name.endswith("weight") and (
                "norm" in name or isinstance(module, ref.LayerNorm | ref.RMSNorm)
            )
            value = randn(*parameter.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
            parameter.copy_(value.to(parameter.dtype))
    return module


# -- GELU -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(approximate, dtype):
    x = torch.cat([torch.linspace(-8, 8, 161, dtype=torch.float64), randn(500, seed=1, scale=3)]).to(dtype)
    torch.testing.assert_close(
        ref.gelu(x, approximate=approximate), F.gelu(x, approximate=approximate), **tolerance(dtype)
    )


def test_gelu_matches_transformers_activations():
    from transformers.activations import GELUActivation, NewGELUActivation

    x = randn(400, seed=2, scale=3)
    torch.testing.assert_close(ref.gelu(x), GELUActivation()(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ref.gelu(x, approximate="tanh"), NewGELUActivation()(x), rtol=1e-12, atol=1e-12)


def test_gelu_values_by_hand():
    assert ref.gelu(torch.tensor([0.0], dtype=torch.float64)).item() == 0.0
    one = 0.5 * (1 + math.erf(1 / math.sqrt(2)))  # Phi(1) = 0.8413...
    assert ref.gelu(torch.tensor([1.0], dtype=torch.float64)).item() == pytest.approx(one, rel=1e-15)
    tanh_one = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))
    assert ref.gelu(torch.tensor([1.0], dtype=torch.float64), "tanh").item() == pytest.approx(tanh_one, rel=1e-15)
    with pytest.raises(ValueError):
        ref.gelu(torch.zeros(2), approximate="fast")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradcheck(approximate):
    x = randn(20, seed=3, scale=3).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: ref.gelu(t, approximate=approximate), (x,))


# -- FeedForward ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("activation", "act"), [("relu", F.relu), ("gelu", F.gelu), ("gelu_tanh", None)])
def test_feed_forward_matches_linear_act_linear(activation, act, dtype):
    layer = randomise(ref.FeedForward(20, 52, activation=activation).to(dtype), seed=10)
    x = randn(3, 5, 20, seed=11, dtype=dtype)
    hidden = F.linear(x, layer.fc1.weight, layer.fc1.bias)
    hidden = act(hidden) if act is not None else F.gelu(hidden, approximate="tanh")
    expected = F.linear(hidden, layer.fc2.weight, layer.fc2.bias)
    torch.testing.assert_close(layer(x), expected, **tolerance(dtype))
    assert {name for name, _ in layer.named_parameters()} == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_swiglu_matches_silu_formula():
    layer = randomise(ref.FeedForward(20, 52, activation="swiglu").double(), seed=12)
    x = randn(3, 5, 20, seed=13)
    gate = F.linear(x, layer.fc_gate.weight, layer.fc_gate.bias)
    up = F.linear(x, layer.fc1.weight, layer.fc1.bias)
    expected = F.linear(F.silu(gate) * up, layer.fc2.weight, layer.fc2.bias)
    torch.testing.assert_close(layer(x), expected, rtol=1e-10, atol=1e-10)


def test_swiglu_matches_llama_mlp():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    config = LlamaConfig(
        hidden_size=24, intermediate_size=40, num_attention_heads=4, num_key_value_heads=4, hidden_act="silu"
    )
    mlp = randomise(LlamaMLP(config).double(), seed=14)
    layer = ref.FeedForward(24, 40, activation="swiglu", bias=False).double()
    layer.load_state_dict(
        {
            "fc_gate.weight": mlp.gate_proj.weight,
            "fc1.weight": mlp.up_proj.weight,
            "fc2.weight": mlp.down_proj.weight,
        }
    )
    x = randn(2, 5, 24, seed=15)
    torch.testing.assert_close(layer(x), mlp(x), rtol=1e-10, atol=1e-10)


def test_feed_forward_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        ref.FeedForward(8, 16, activation="swish")


# -- LayerNorm and RMSNorm ------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [1e-5, 0.1])
@pytest.mark.parametrize("shape", [(3, 7, 24), (2, 5, 3, 10)])
def test_layer_norm_matches_torch(shape, eps, dtype):
    layer = randomise(ref.LayerNorm(shape[-1], eps=eps).to(dtype), seed=20)
    x = randn(*shape, seed=21, dtype=dtype, scale=2.0) + 0.5
    expected = F.layer_norm(x, shape[-1:], layer.weight, layer.bias, eps)
    torch.testing.assert_close(layer(x), expected, **tolerance(dtype))
    oracle = torch.nn.LayerNorm(shape[-1], eps=eps, dtype=dtype)
    oracle.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), oracle(x), **tolerance(dtype))


def test_layer_norm_starts_as_plain_standardisation():
    layer = ref.LayerNorm(16).double()
    assert torch.equal(layer.weight, torch.ones(16, dtype=torch.float64))
    assert torch.equal(layer.bias, torch.zeros(16, dtype=torch.float64))
    y = layer(randn(4, 16, seed=22, scale=3.0) + 2.0)
    torch.testing.assert_close(y.mean(-1), torch.zeros(4, dtype=torch.float64), rtol=0, atol=1e-12)
    # the biased variance of y is var / (var + eps), just under one
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(4, dtype=torch.float64), rtol=1e-5, atol=0)


def test_layer_norm_is_stable_with_a_large_mean():
    layer = ref.LayerNorm(48).double()
    x = randn(4, 9, 48, seed=23) + 1e6
    torch.testing.assert_close(layer(x), F.layer_norm(x, (48,)), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [1e-6, 0.1])
def test_rms_norm_matches_torch(eps, dtype):
    layer = randomise(ref.RMSNorm(24, eps=eps).to(dtype), seed=30)
    oracle = torch.nn.RMSNorm(24, eps=eps, dtype=dtype)
    oracle.load_state_dict(layer.state_dict())
    x = randn(3, 7, 24, seed=31, dtype=dtype, scale=2.0) + 0.5
    torch.testing.assert_close(layer(x), oracle(x), **tolerance(dtype))


def test_rms_norm_matches_llama():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    oracle = LlamaRMSNorm(24, eps=0.1)  # computes in float32 whatever the input: compare in float32
    layer = randomise(ref.RMSNorm(24, eps=0.1), seed=32)
    oracle.load_state_dict(layer.state_dict())
    x = randn(3, 7, 24, seed=33, dtype=torch.float32, scale=2.0)
    torch.testing.assert_close(layer(x), oracle(x), rtol=1.3e-6, atol=1e-5)


HALF = [torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", HALF)
def test_rms_norm_in_half_precision_matches_llama(dtype):
    """Llama upcasts to float32, normalises, casts back and then applies the weight: so does the reference."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    layer = randomise(ref.RMSNorm(64), seed=36).to(dtype)
    oracle = LlamaRMSNorm(64, eps=1e-6).to(dtype)
    oracle.load_state_dict(layer.state_dict())
    x = randn(4, 9, 64, seed=37, dtype=dtype, scale=300.0)  # x^2 overflows float16 (max 65504)
    out = layer(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out, oracle(x), rtol=0, atol=0)
    exact = (x.double() * torch.rsqrt(x.double().square().mean(-1, keepdim=True) + 1e-6)) * layer.weight.double()
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(out.double(), exact, rtol=4 * eps, atol=4 * eps)
    torch.testing.assert_close(out, F.rms_norm(x, (64,), layer.weight, 1e-6), rtol=8 * eps, atol=8 * eps)


def test_norms_in_float16_would_overflow_in_their_own_dtype():
    """The reason for the float32 statistics: computed in float16, x^2 is inf and the output zeros (or the bias)."""
    x = randn(4, 9, 64, seed=38, dtype=torch.float16, scale=300.0)
    assert torch.isinf(x.square().mean(-1)).all()
    assert ref.RMSNorm(64).half()(x).abs().amax(-1).min() > 1.0
    in_float16 = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6)
    assert torch.equal(in_float16, torch.zeros_like(x))


@pytest.mark.parametrize("dtype", HALF)
def test_layer_norm_in_half_precision_matches_torch(dtype):
    """F.layer_norm computes half-precision inputs in float32 on the CPU; the reference does too."""
    layer = randomise(ref.LayerNorm(64), seed=39).to(dtype)
    x = randn(4, 9, 64, seed=40, dtype=dtype, scale=300.0) + 50.0  # (x - mean)^2 overflows float16
    out = layer(x)
    assert out.dtype == dtype
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(out, F.layer_norm(x, (64,), layer.weight, layer.bias, 1e-5), rtol=8 * eps, atol=8 * eps)
    h = x.double()
    exact = F.layer_norm(h, (64,), layer.weight.double(), layer.bias.double(), 1e-5)
    torch.testing.assert_close(out.double(), exact, rtol=8 * eps, atol=8 * eps)


@pytest.mark.parametrize("cls", ["LayerNorm", "RMSNorm"])
def test_norms_keep_float32_and_float64_in_their_dtype(cls):
    """The upcast is to at least float32: float64 stays float64 (to 1e-12 of F.layer_norm / F.rms_norm)."""
    layer = randomise(getattr(ref, cls)(24, eps=0.1).double(), seed=41)
    x = randn(3, 7, 24, seed=42, scale=2.0) + 0.5
    if cls == "LayerNorm":
        expected = F.layer_norm(x, (24,), layer.weight, layer.bias, 0.1)
    else:
        expected = F.rms_norm(x, (24,), layer.weight, 0.1)
    out = layer(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", ["LayerNorm", "RMSNorm"])
def test_norms_gradcheck(cls):
    layer = randomise(getattr(ref, cls)(6, eps=0.1).double(), seed=34)
    x = (randn(2, 3, 6, seed=35) + 0.5).requires_grad_()
    params = tuple(layer.parameters())

    def run(inputs: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(
            layer, dict(zip(dict(layer.named_parameters()), weights, strict=True)), inputs
        )

    assert torch.autograd.gradcheck(run, (x, *(p.detach().clone().requires_grad_() for p in params)))


# -- Dropout --------------------------------------------------------------------------


def test_dropout_is_identity_in_eval_mode_and_for_p_zero():
    x = randn(8, 13, seed=40)
    assert ref.Dropout(0.5).eval()(x) is x
    assert torch.equal(ref.Dropout(0.0)(x), x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_match_f_dropout(p):
    torch.manual_seed(0)
    x = torch.ones(1000, 400, dtype=torch.float64)
    out = ref.Dropout(p)(x)
    kept = out != 0
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / (1 - p)), rtol=1e-15, atol=0)
    builtin = F.dropout(x, p, training=True)
    assert torch.equal(torch.unique(builtin), torch.unique(out))  # the same two values, 0 and 1 / (1 - p)
    assert abs((~kept).double().mean().item() - p) < 0.006  # about 8 standard deviations
    assert abs(out.mean().item() - 1.0) < 0.03  # inverted dropout keeps the expectation


def test_dropout_p_one_gives_zeros_and_p_outside_raises():
    assert torch.equal(ref.Dropout(1.0)(randn(4, 5, seed=41)), torch.zeros(4, 5, dtype=torch.float64))
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError):
            ref.Dropout(p)


def test_dropout_gradient_flows_through_kept_elements_only():
    torch.manual_seed(1)
    x = randn(30, 30, seed=42).requires_grad_()
    out = ref.Dropout(0.3)(x)
    grad_output = randn(30, 30, seed=43)
    (grad,) = torch.autograd.grad(out, x, grad_output)
    kept = out != 0
    torch.testing.assert_close(grad, torch.where(kept, grad_output / 0.7, 0.0), rtol=1e-15, atol=0)


# -- the block against nn.TransformerEncoderLayer ----------------------------------------


def copy_into_encoder_layer(block, oracle: torch.nn.TransformerEncoderLayer) -> None:
    with torch.no_grad():
        attn = block.attn
        oracle.self_attn.in_proj_weight.copy_(torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]))
        oracle.self_attn.in_proj_bias.copy_(torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]))
        oracle.self_attn.out_proj.load_state_dict(attn.out_proj.state_dict())
        oracle.linear1.load_state_dict(block.ff.fc1.state_dict())
        oracle.linear2.load_state_dict(block.ff.fc2.state_dict())
        oracle.norm1.load_state_dict(block.norm1.state_dict())
        oracle.norm2.load_state_dict(block.norm2.state_dict())


def block_and_oracle(norm_first: bool, activation: str, eps: float, dtype: torch.dtype, seed: int):
    block = ref.TransformerBlock(24, 4, 40, dropout=0.1, norm_first=norm_first, activation=activation, eps=eps)
    block = randomise(block.to(dtype), seed=seed).eval()
    oracle = torch.nn.TransformerEncoderLayer(
        24,
        4,
        dim_feedforward=40,
        dropout=0.1,
        activation=activation,
        layer_norm_eps=eps,
        batch_first=True,
        norm_first=norm_first,
        dtype=dtype,
    ).eval()
    copy_into_encoder_layer(block, oracle)
    return block, oracle


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_block_matches_transformer_encoder_layer_with_padding(norm_first, activation, dtype):
    block, oracle = block_and_oracle(norm_first, activation, 0.05, dtype, seed=50)
    x = randn(3, 7, 24, seed=51, dtype=dtype)
    real = torch.arange(7)[None, :] < torch.tensor([[7], [4], [2]])  # (B, T), True = a real token
    mine = block(x, mask=real[:, None, None, :])
    # With gradients enabled the oracle takes its ordinary (slow) path; its masks mean True = NOT allowed.
    torch.testing.assert_close(mine, oracle(x, src_key_padding_mask=~real), **tolerance(dtype, loose=True))
    # Under no_grad in eval mode it may take the fused "fast path", which can return anything (zeros,
    # as nested tensors do) at padded positions: compare the real tokens only.
    with torch.no_grad():
        fast = oracle(x, src_key_padding_mask=~real)
    torch.testing.assert_close(mine[real], fast[real], **tolerance(dtype, loose=True))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_block_matches_transformer_encoder_layer_causal(norm_first, dtype):
    block, oracle = block_and_oracle(norm_first, "relu", 1e-5, dtype, seed=60)
    x = randn(2, 9, 24, seed=61, dtype=dtype)
    causal = torch.ones(9, 9, dtype=torch.bool).tril()
    expected = oracle(x, src_mask=~causal)
    torch.testing.assert_close(block(x, mask=causal), expected, **tolerance(dtype, loose=True))


def test_block_matches_one_layer_gpt2():
    """GPT-2's block is pre-norm with the tanh GELU; its model adds a final LayerNorm (ln_f)."""
    from transformers import GPT2Config, GPT2Model

    d_model, n_heads, d_ff = 24, 4, 40
    config = GPT2Config(
        n_embd=d_model,
        n_head=n_heads,
        n_layer=1,
        n_inner=d_ff,
        n_positions=16,
        vocab_size=10,
        activation_function="gelu_new",
        bos_token_id=None,
        eos_token_id=None,
    )
    config._attn_implementation = "eager"
    gpt2 = randomise(GPT2Model(config).double(), seed=70).eval()
    with torch.no_grad():
        gpt2.wpe.weight.zero_()  # no position embeddings: the block sees inputs_embeds as they are
    layer = gpt2.h[0]
    block = ref.TransformerBlock(d_model, n_heads, d_ff, dropout=0.1, activation="gelu_tanh").double().eval()
    final = ref.LayerNorm(d_model).double()
    with torch.no_grad():  # GPT-2's Conv1D stores (in, out): transpose into Linear's (out, in)
        qkv_weight, qkv_bias = layer.attn.c_attn.weight, layer.attn.c_attn.bias
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            getattr(block.attn, name).weight.copy_(qkv_weight[:, i * d_model : (i + 1) * d_model].T)
            getattr(block.attn, name).bias.copy_(qkv_bias[i * d_model : (i + 1) * d_model])
        block.attn.out_proj.weight.copy_(layer.attn.c_proj.weight.T)
        block.attn.out_proj.bias.copy_(layer.attn.c_proj.bias)
        block.ff.fc1.weight.copy_(layer.mlp.c_fc.weight.T)
        block.ff.fc1.bias.copy_(layer.mlp.c_fc.bias)
        block.ff.fc2.weight.copy_(layer.mlp.c_proj.weight.T)
        block.ff.fc2.bias.copy_(layer.mlp.c_proj.bias)
        block.norm1.load_state_dict(layer.ln_1.state_dict())
        block.norm2.load_state_dict(layer.ln_2.state_dict())
        final.load_state_dict(gpt2.ln_f.state_dict())
        x = randn(2, 7, d_model, seed=71)
        attention_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
        expected = gpt2(inputs_embeds=x, attention_mask=attention_mask).last_hidden_state
        real = attention_mask.bool()
        causal = torch.ones(7, 7, dtype=torch.bool).tril()
        mine = final(block(x, mask=causal & real[:, None, None, :]))
    torch.testing.assert_close(mine[real], expected[real], rtol=1e-10, atol=1e-10)


def test_block_with_rms_norm_and_swiglu_by_hand():
    block = randomise(ref.TransformerBlock(24, 4, 40, activation="swiglu", norm="rmsnorm", eps=0.01).double(), seed=80)
    x = randn(2, 5, 24, seed=81)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()

    def rms(module, h):
        return F.rms_norm(h, (24,), module.weight, 0.01)

    def attend(h):
        q, k, v = (
            getattr(block.attn, name)(h).view(2, 5, 4, 6).transpose(1, 2) for name in ("q_proj", "k_proj", "v_proj")
        )
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        return block.attn.out_proj(out.transpose(1, 2).reshape(2, 5, 24))

    def swiglu(h):
        return block.ff.fc2(F.silu(block.ff.fc_gate(h)) * block.ff.fc1(h))

    h = x + attend(rms(block.norm1, x))
    expected = h + swiglu(rms(block.norm2, h))
    torch.testing.assert_close(block(x, mask=causal), expected, rtol=1e-10, atol=1e-10)
    assert "norm1.bias" not in block.state_dict()


def test_block_state_dict_names():
    names = set(ref.TransformerBlock(24, 4, 40).state_dict())
    assert names == {
        *(f"attn.{p}_proj.{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")),
        *(f"{m}.{w}" for m in ("norm1", "norm2", "ff.fc1", "ff.fc2") for w in ("weight", "bias")),
    }


def test_block_dropout_one_in_training_drops_every_branch():
    block = randomise(ref.TransformerBlock(24, 4, 40, dropout=1.0).double(), seed=90)
    x = randn(2, 5, 24, seed=91)
    assert torch.equal(block(x), x)  # pre-norm: only the residual stream survives
    post = randomise(ref.TransformerBlock(24, 4, 40, dropout=1.0, norm_first=False).double(), seed=92)
    torch.testing.assert_close(post(x), post.norm2(post.norm1(x)), rtol=1e-12, atol=1e-12)


def test_block_gradcheck():
    block = randomise(ref.TransformerBlock(8, 2, 12, activation="gelu", eps=0.1).double(), seed=93).eval()
    x = randn(2, 3, 8, seed=94).requires_grad_()
    mask = torch.tensor([[True, True, True], [True, True, False]])[:, None, None, :]
    assert torch.autograd.gradcheck(lambda t: block(t, mask=mask), (x,))


def test_block_rejects_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        ref.TransformerBlock(8, 2, 16, norm="batchnorm")
