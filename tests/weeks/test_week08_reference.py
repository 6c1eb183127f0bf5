"""The week 08 reference against independent oracles.

* ``transformers``' ``GPT2LMHeadModel`` (tiny config, random weights, eager attention, dropout
  0.1 in eval mode) run with ``use_cache=True`` and ``past_key_values``: prefill and four
  one-token steps of a left-padded batch, logits and the cached keys and values, float64 and float32.
* The model's own uncached forward on the whole sequence, for MHA, GQA and MQA.
* A hand-written uncached GQA forward built on ``F.scaled_dot_product_attention(enable_gqa=True)``.
* Cache sizes against week 02's ``kv_cache_bytes_per_token``.
* ``generate_cached`` against week 06's uncached ``greedy`` and ``sample`` on the same model.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from autograder import config as course_config
from autograder import reference
from tests.helpers import REPO, randn

COURSE = course_config.load(REPO)
ref = reference.load(COURSE.week("08"))  # kvcache.py, with the reference gpt, block and multihead it imports
week02 = reference.load(COURSE.week("02"))
week06 = reference.load(COURSE.week("06"))

V, MAX_LEN, D, LAYERS, HEADS, FF = 53, 32, 36, 2, 6, 48
LENGTHS = [7, 4, 2]
DTYPES = [torch.float32, torch.float64]


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    # whole models in float32: different kernels sum in different orders
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-4}


def left_padding(lengths: list[int]) -> torch.Tensor:
    length = max(lengths)
    return (torch.arange(length)[None, :] >= length - torch.tensor(lengths)[:, None]).long()


def prompts(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    mask = left_padding(LENGTHS)
    ids = torch.randint(V, mask.shape, generator=torch.Generator().manual_seed(seed)).masked_fill(mask == 0, 0)
    return ids, mask


def our_model(n_kv_heads: int, dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    model = ref.GPT(V, MAX_LEN, D, HEADS, LAYERS, d_ff=FF, dropout=0.1, n_kv_heads=n_kv_heads)
    with torch.no_grad():
        for i, (name, parameter) in enumerate(model.named_parameters()):
            is_norm_weight = "norm" in name and name.endswith("weight")
            parameter.copy_(randn(*parameter.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0))
    return model.to(dtype).eval()


def hf_model(dtype: torch.dtype, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=V,
        n_positions=MAX_LEN,
        n_embd=D,
        n_layer=LAYERS,
        n_head=HEADS,
        n_inner=FF,
        activation_function="gelu_new",
        attn_pdrop=0.1,
        resid_pdrop=0.1,
        embd_pdrop=0.1,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for i, (name, parameter) in enumerate(model.named_parameters()):
            is_norm_weight = ".ln_" in name and name.endswith("weight")
            parameter.copy_(randn(*parameter.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0))
    return model.to(dtype).eval()


def hf_cached_layers(past) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(past, "layers"):
        return [(layer.keys, layer.values) for layer in past.layers]
    return [(past.key_cache[i], past.value_cache[i]) for i in range(len(past.key_cache))]


# transformers renamed GPT-2's `past_key_values` (argument and output) to `cache`, and removes the old
# name in 5.40; older releases only know `past_key_values`.
def cache_argument() -> str:
    from transformers import GPT2LMHeadModel

    return "cache" if "cache" in inspect.signature(GPT2LMHeadModel.forward).parameters else "past_key_values"


def returned_cache(out):
    return getattr(out, cache_argument())


@pytest.mark.parametrize("dtype", DTYPES)
def test_cached_steps_match_gpt2_past_key_values(dtype):
    hf = hf_model(dtype, seed=1)
    model = ref.GPT(V, MAX_LEN, D, HEADS, LAYERS, d_ff=FF, dropout=0.1).to(dtype)
    model.load_state_dict(ref.from_hf_state_dict(hf.state_dict()))
    model.eval()
    ids, mask = prompts(seed=2)
    real = mask.bool()
    positions = ref.position_ids(mask)
    with torch.no_grad():
        out = hf(ids, attention_mask=mask, position_ids=positions, use_cache=True)
    logits, cache = ref.prefill(model, ids, mask)
    torch.testing.assert_close(logits[real], out.logits[real], **tolerance(dtype))
    past = returned_cache(out)
    for step in range(4):
        token = torch.randint(V, (len(LENGTHS), 1), generator=torch.Generator().manual_seed(10 + step))
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        with torch.no_grad():
            out = hf(
                token,
                attention_mask=mask,
                position_ids=ref.position_ids(mask)[:, -1:],
                use_cache=True,
                **{cache_argument(): past},
            )
        past = returned_cache(out)
        ours = ref.decode_step(model, token, mask, cache)
        torch.testing.assert_close(ours, out.logits, **tolerance(dtype))
        assert out.logits.abs().max() > 3  # non-trivial logits
    assert ref.cache_shape(cache) == (LAYERS, 2, len(LENGTHS), HEADS, mask.shape[1], D // HEADS)
    real = mask.bool()  # padding positions differ after layer 0: our fully masked padding rows give zeros
    for layer, (keys, values) in enumerate(hf_cached_layers(past)):
        ours_k, ours_v = cache.keys[layer], cache.values[layer]
        assert ours_k is not None
        assert ours_v is not None
        torch.testing.assert_close(ours_k.transpose(1, 2)[real], keys.transpose(1, 2)[real], **tolerance(dtype))
        torch.testing.assert_close(ours_v.transpose(1, 2)[real], values.transpose(1, 2)[real], **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_kv_heads", [6, 3, 2, 1])
def test_cached_steps_match_uncached_forward(n_kv_heads, dtype):
    model = our_model(n_kv_heads, dtype, seed=3)
    ids, mask = prompts(seed=4)
    real = mask.bool()
    logits, cache = ref.prefill(model, ids, mask)
    with torch.no_grad():
        torch.testing.assert_close(logits[real], model(ids, attention_mask=mask)[real], **tolerance(dtype))
    for step in range(5):
        token = torch.randint(V, (len(LENGTHS), 1), generator=torch.Generator().manual_seed(20 + step))
        ids = torch.cat([ids, token], dim=1)
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        with torch.no_grad():
            full = model(ids, attention_mask=mask)[:, -1:]
        torch.testing.assert_close(ref.decode_step(model, token, mask, cache), full, **tolerance(dtype))
        assert cache.length == ids.shape[1]
    assert ref.cache_shape(cache) == (LAYERS, 2, len(LENGTHS), n_kv_heads, ids.shape[1], D // HEADS)


def sdpa_forward(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """An uncached GPT forward written with F.scaled_dot_product_attention(enable_gqa=True) and F.layer_norm."""
    batch, length = ids.shape
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    allowed = torch.ones(length, length, dtype=torch.bool).tril()[None, None] & mask.bool()[:, None, None, :]
    allowed = allowed | torch.eye(length, dtype=torch.bool)  # padding queries see themselves: no NaN rows
    x = model.token_embedding.weight[ids] + model.position_embedding.weight[positions]

    def norm(module, h):
        return F.layer_norm(h, (D,), module.weight, module.bias, module.eps)

    for block in model.blocks:
        attn = block.attn
        h = norm(block.norm1, x)
        q = F.linear(h, attn.q_proj.weight, attn.q_proj.bias).view(batch, length, HEADS, -1).transpose(1, 2)
        k = F.linear(h, attn.k_proj.weight, attn.k_proj.bias).view(batch, length, attn.n_kv_heads, -1).transpose(1, 2)
        v = F.linear(h, attn.v_proj.weight, attn.v_proj.bias).view(batch, length, attn.n_kv_heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=True)
        x = x + F.linear(out.transpose(1, 2).reshape(batch, length, D), attn.out_proj.weight, attn.out_proj.bias)
        h = F.gelu(F.linear(norm(block.norm2, x), block.ff.fc1.weight, block.ff.fc1.bias), approximate="tanh")
        x = x + F.linear(h, block.ff.fc2.weight, block.ff.fc2.bias)
    return norm(model.norm_f, x) @ model.token_embedding.weight.T


@pytest.mark.parametrize("n_kv_heads", [3, 2, 1])
def test_gqa_cache_matches_sdpa_enable_gqa(n_kv_heads):
    model = our_model(n_kv_heads, torch.float64, seed=5)
    ids, mask = prompts(seed=6)
    real = mask.bool()
    logits, cache = ref.prefill(model, ids, mask)
    with torch.no_grad():
        torch.testing.assert_close(logits[real], sdpa_forward(model, ids, mask)[real])
        for step in range(4):
            token = torch.randint(V, (len(LENGTHS), 1), generator=torch.Generator().manual_seed(30 + step))
            ids = torch.cat([ids, token], dim=1)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            expected = sdpa_forward(model, ids, mask)[:, -1:]
            torch.testing.assert_close(ref.decode_step(model, token, mask, cache), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_kv_heads", [6, 2, 1])
def test_cache_bytes_match_week02_formula(n_kv_heads, dtype):
    model = our_model(n_kv_heads, dtype)
    size = torch.tensor([], dtype=dtype).element_size()
    per_token = week02.kv_cache_bytes_per_token(LAYERS, n_kv_heads, D // HEADS, bytes_per_value=size)
    assert ref.cache_bytes_per_token(model) == per_token
    ids, mask = prompts(seed=7)
    _, cache = ref.prefill(model, ids, mask)
    token = torch.ones(len(LENGTHS), 1, dtype=torch.long)
    mask = torch.cat([mask, token], dim=1)
    ref.decode_step(model, token, mask, cache)
    assert cache.bytes() == len(LENGTHS) * mask.shape[1] * per_token
    # GQA and MQA shrink the cache by H / Hkv
    assert ref.cache_bytes_per_token(our_model(HEADS, dtype)) == per_token * HEADS // n_kv_heads


def test_kv_cache_append_and_empty_shape():
    cache = ref.KVCache(2)
    assert cache.length == 0
    assert cache.bytes() == 0
    with pytest.raises(ValueError):
        ref.cache_shape(cache)
    token = torch.ones(3, 1, dtype=torch.long)
    with pytest.raises(ValueError):
        ref.decode_step(our_model(2, torch.float64), token, torch.ones_like(token), cache)  # nothing to decode from
    a, b = randn(2, 3, 4, 5, seed=1), randn(2, 3, 2, 5, seed=2)
    cache.append(1, a, a)
    cache.append(0, a, -a)
    keys, values = cache.append(0, b, -b)
    torch.testing.assert_close(keys, torch.cat([a, b], dim=2))
    torch.testing.assert_close(values, -torch.cat([a, b], dim=2))
    assert cache.length == 6
    assert cache.keys[1] is not None
    assert cache.keys[1].shape[2] == 4
    assert cache.bytes() == (6 + 4) * 2 * 3 * 5 * 2 * 8


@pytest.mark.parametrize("n_kv_heads", [6, 2, 1])
def test_generate_cached_equals_week06_generation(n_kv_heads):
    model = our_model(n_kv_heads, torch.float64, seed=8)
    ids, mask = prompts(seed=9)
    torch.testing.assert_close(
        ref.generate_cached(model, ids, 8, attention_mask=mask),
        week06.greedy(model, ids, 8, attention_mask=mask),
        rtol=0,
        atol=0,
    )
    for temperature, top_k, seed in ((1.5, 3, 5), (0.8, None, 6), (1.0, 10, 7), (1.0, 100, 8)):
        cached = ref.generate_cached(
            model, ids, 8, attention_mask=mask, do_sample=True, temperature=temperature, top_k=top_k, seed=seed
        )
        uncached = week06.sample(model, ids, 8, temperature=temperature, top_k=top_k, seed=seed, attention_mask=mask)
        torch.testing.assert_close(cached, uncached, rtol=0, atol=0)
    assert torch.equal(ref.generate_cached(model, ids, 0, attention_mask=mask), ids)
    torch.testing.assert_close(ref.generate_cached(model, ids[:1], 5), week06.greedy(model, ids[:1], 5), rtol=0, atol=0)


@pytest.mark.parametrize("n_kv_heads", [6, 2, 1])
def test_cached_attention_without_a_cache_is_week02_attention_with_the_mask(n_kv_heads):
    """What the hidden test_cached_attention expects: no cache means week 02's attention, mask included; a cache
    filled in two chunks gives the last chunk's rows of the uncached attention."""
    attn = week02.MultiHeadAttention(D, HEADS, n_kv_heads).double()
    with torch.no_grad():
        for i, parameter in enumerate(attn.parameters()):
            parameter.copy_(randn(*parameter.shape, seed=40 + i, scale=0.5))
    x = randn(3, 5, D, seed=50)
    padding = left_padding([5, 3, 1])
    mask = week06.causal_mask(5, 5, padding)
    with torch.no_grad():
        full = attn(x, mask=mask)[0]
        torch.testing.assert_close(ref.cached_attention(attn, x, mask), full, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(ref.cached_attention(attn, x), full)  # the mask matters here
        cache = ref.KVCache(2)
        ref.cached_attention(attn, x[:, :3], week06.causal_mask(3, 3, padding[:, :3]), cache, 1)
        last = ref.cached_attention(attn, x[:, 3:], week06.causal_mask(2, 5, padding), cache, 1)
    torch.testing.assert_close(last, full[:, 3:], rtol=1e-12, atol=1e-12)
    assert cache.keys[0] is None
    assert cache.keys[1] is not None
    assert tuple(cache.keys[1].shape) == (3, n_kv_heads, 5, D // HEADS)
