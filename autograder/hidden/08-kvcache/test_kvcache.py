"""Hidden tests for week 08 (inference with a KV cache).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader. Model tests load the same random weights (std 0.5, LayerNorm weights
1 + 0.5 N(0, 1)) into the reference ``GPT`` and the student's, by name: a tiny GPT-2
(vocab 61, width 36, 6 heads, 2 layers, dropout 0.1 in eval mode) with 6, 2 and 1
key/value heads (MHA, GQA, MQA). Prompts are a batch of 3 left-padded to different
lengths; decoding runs 4 cached steps, each compared with the full forward on the whole
sequence so far (the reference's, and the student's own uncached forward, so a cache bug
is told apart from a model bug). A cached step equals a full forward whose positions and
mask are those the step used, so the known mistakes (positions restarting at 0, padding
keys in the cache not masked, ...) are computed exactly from the reference's submodules.
``tests/test_week08_reference.py`` checks the reference against ``transformers``'
``GPT2LMHeadModel`` with ``past_key_values`` and against ``F.scaled_dot_product_attention``
with ``enable_gqa=True``.
"""

from __future__ import annotations

import pytest
import torch

from autograder import (
    CheckFailed,
    assert_close,
    assert_equal,
    assert_global_rng_untouched,
    assert_no_forbidden_ops,
    expect_sequence,
    expect_tensor,
    randn,
)
from autograder.checks import MISTAKE_HINT
from autograder.testing import DTYPE_IDS, DTYPE_NAMES, DTYPES, LOOSE, forbidden, left_padded, raises_value_error

FORBIDDEN = forbidden("08-kvcache")
V, MAX_LEN, D, H, L, F = 61, 24, 36, 6, 2, 48
DH = D // H
KV_HEADS = [6, 2, 1]
KV_IDS = ["MHA-Hkv6", "GQA-Hkv2", "MQA-Hkv1"]
LENGTHS = [7, 4, 2]  # the prompts' real lengths, left-padded to 7
STEPS = 4


def prompts(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    mask = left_padded(LENGTHS, max(LENGTHS))
    ids = torch.randint(V, mask.shape, generator=torch.Generator().manual_seed(seed)).masked_fill(mask == 0, 0)
    return ids, mask


def random_state(reference, n_kv_heads: int, dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    shapes = reference.GPT(V, MAX_LEN, D, H, L, d_ff=F, n_kv_heads=n_kv_heads).state_dict()
    state = {}
    for i, (name, value) in enumerate(shapes.items()):
        is_norm_weight = "norm" in name and name.endswith("weight")
        state[name] = (randn(*value.shape, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0)).to(dtype)
    return state


def build(student, reference, n_kv_heads: int, dtype: torch.dtype, seed: int):
    """The reference GPT and the student's with the same weights, eval mode (dropout 0.1 must do nothing)."""
    state = random_state(reference, n_kv_heads, dtype, seed)
    ref = reference.GPT(V, MAX_LEN, D, H, L, d_ff=F, dropout=0.1, n_kv_heads=n_kv_heads).to(dtype)
    ref.load_state_dict(state)
    ref.eval()
    mine = student.GPT(V, MAX_LEN, D, H, L, d_ff=F, dropout=0.1, n_kv_heads=n_kv_heads)
    if dtype == torch.float64:
        mine.double()
    mine.load_state_dict(state)
    mine.eval()
    return ref, mine


def describe(n_kv_heads: int, dtype: torch.dtype) -> str:
    return (
        f"GPT(vocab_size={V}, max_len={MAX_LEN}, d_model={D}, n_heads={H}, n_layers={L}, d_ff={F}, "
        f"dropout=0.1 in eval mode, n_kv_heads={n_kv_heads}), {DTYPE_NAMES[dtype]}"
    )


def check_int(value, expected: int, *, name: str, hint: str, mistakes: dict[str, int] | None = None) -> None:
    if type(value) is not int:
        raise CheckFailed(f"{name}: expected a Python int, got {type(value).__name__}")
    mistake = None
    for description, wrong in (mistakes or {}).items():
        if value == wrong != expected:
            mistake, hint = description, MISTAKE_HINT + description
            break
    if value != expected:
        raise CheckFailed(f"{name}: got {value}, expected {expected}. Hint: {hint}", mistake)


def check_shape_tuple(value, want: tuple[int, ...], *, name: str, hint: str) -> None:
    """``value`` must be a tuple (or list) of six Python ints equal to ``want``."""
    got = tuple(expect_sequence(value, 6, name=name, hint=hint))
    if any(type(item) is not int for item in got):
        kinds = ", ".join(type(item).__name__ for item in got)
        raise CheckFailed(f"{name}: expected six Python ints, got ({kinds}). Hint: int(...) each entry; {hint}")
    if got != want:
        raise CheckFailed(f"{name}: got {got}, expected {want}. Hint: {hint}")


# -- what known mistakes produce: a full forward with the positions and mask a buggy step used ------


def forward_with(ref, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The reference GPT (eval mode) on ``ids`` ``(B, T)`` with the given positions and bool mask ``(B, 1, T, T)``."""
    with torch.no_grad():
        x = ref.token_embedding(ids) + ref.position_embedding(positions)
        for block in ref.blocks:
            x = x + block.attn(block.norm1(x), mask=mask)[0]
            x = x + block.ff(block.norm2(x))
        return ref.norm_f(x) @ ref.token_embedding.weight.T


def step_mistakes(ref, ids: torch.Tensor, mask: torch.Tensor, prompt_length: int) -> dict[str, torch.Tensor]:
    """Last-position logits ``(B, V)`` of decoding steps with known bugs, tokens after ``prompt_length`` decoded."""
    batch, length = ids.shape
    good_pos = (mask.cumsum(-1) - 1).clamp(min=0)
    real = mask.bool()[:, None, None, :]
    causal = torch.ones(length, length, dtype=torch.bool).tril()[None, None]
    good_mask = causal & real
    decoded = torch.arange(length) >= prompt_length  # (T,): the positions fed one at a time
    restart = good_pos.masked_fill(decoded[None, :], 0)
    unpadded = good_pos.clone()
    unpadded[:, decoded] = torch.arange(length)[decoded].expand(batch, -1)
    one_more = good_pos.clone()
    one_more[:, decoded] += 1
    padding_seen = good_mask | (causal & decoded[None, None, :, None])
    first_key = torch.arange(length)[None, :] == 0  # (1, T)
    only_first = good_mask & ~(decoded[:, None] & ~first_key)[None, None]
    variants = {
        "each step's positions restart at 0: the new token's position is position_ids(full mask)[:, Tc:]": (
            restart,
            good_mask,
        ),
        "positions Tc, Tc+1, ... that ignore the left padding: take them from position_ids(full attention_mask)": (
            unpadded,
            good_mask,
        ),
        "the new token's position is one too large (sum of the mask, not sum - 1)": (one_more, good_mask),
        "the padding keys in the cache are not masked in decode steps: the mask must cover Tc + Tn keys": (
            good_pos,
            padding_seen,
        ),
        "tril without the Tk - Tq shift: the new token sees only the first key, not the cache": (
            good_pos,
            only_first,
        ),
    }
    return {k: forward_with(ref, ids, pos, m)[:, -1] for k, (pos, m) in variants.items()}


# -- the cache itself --------------------------------------------------------------------------


def test_kv_cache_append(student, reference):
    batch, heads, d_head = 2, 3, 5
    cache, ref_cache = student.KVCache(2), reference.KVCache(2)
    check_int(cache.length.fetch(), 0, name="KVCache(2).length before any append", hint="0 when empty")
    chunks = [(0, 4), (1, 4), (0, 1), (1, 1), (0, 2), (1, 2)]  # (layer, new positions)
    for i, (layer, new) in enumerate(chunks):
        k = randn(batch, heads, new, d_head, seed=2 * i)
        v = randn(batch, heads, new, d_head, seed=2 * i + 1)
        expected_k, expected_v = ref_cache.append(layer, k, v)
        old_k = ref_cache.keys[layer][:, :, :-new]
        label = f"KVCache(2).append({layer}, k, v) with k, v (2, 3, {new}, 5), call {i + 1} of {chunks}"
        got_k, got_v = expect_sequence(cache.append(layer, k, v), 2, name=label)
        hint = "torch.cat([cached, new], dim=2): the time dim of (B, Hkv, T, Dh), cached positions first"
        mistakes = {"the new keys come before the cached ones": torch.cat([k, old_k], dim=2)}
        assert_close(got_k, expected_k, name=f"keys returned by {label}", hint=hint, mistakes=mistakes)
        assert_close(got_v, expected_v, name=f"values returned by {label}", hint=hint)
        check_int(
            cache.length.fetch(),
            ref_cache.length,
            name=f"KVCache.length after {label}",
            hint="the time dim of layer 0's keys",
        )
    for layer in range(2):
        assert_close(cache.keys.fetch()[layer], ref_cache.keys[layer], name=f"KVCache.keys[{layer}] after {chunks}")
        assert_close(
            cache.values.fetch()[layer], ref_cache.values[layer], name=f"KVCache.values[{layer}] after {chunks}"
        )
    per_layer = ref_cache.keys[0].numel() * 8 * 2
    check_int(
        cache.bytes(),
        ref_cache.bytes(),
        name="KVCache.bytes() after those appends (float64)",
        hint="numel() * element_size() of every layer's keys and values",
        mistakes={
            "only one layer counted": per_layer,
            "numel without element_size": per_layer * 2 // 8,
        },
    )
    check_shape_tuple(
        student.cache_shape(cache),
        reference.cache_shape(ref_cache),
        name="cache_shape(cache) after those appends",
        hint="(L, 2, B, Hkv, Tc, Dh)",
    )


def test_gpt_state_dict_gqa(student, reference):
    for n_kv in (2, 1, None):
        expected = {
            name: tuple(v.shape)
            for name, v in reference.GPT(V, MAX_LEN, D, H, L, d_ff=F, n_kv_heads=n_kv).state_dict().items()
        }
        state = student.GPT(V, MAX_LEN, D, H, L, d_ff=F, n_kv_heads=n_kv).state_dict()
        if not isinstance(state, dict):
            raise CheckFailed("GPT.state_dict() did not return a dict of tensors")
        got = {name: tuple(v.shape) for name, v in state.items() if isinstance(v, torch.Tensor)}
        missing, extra = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
        if missing or extra:
            raise CheckFailed(
                f"GPT(..., n_kv_heads={n_kv}): state_dict names differ from week 06's; "
                f"missing {missing[:6]}, unexpected {extra[:6]}"
            )
        wrong = {name: (got[name], shape) for name, shape in expected.items() if got[name] != shape}
        if wrong:
            name, (shape, want) = next(iter(wrong.items()))
            raise CheckFailed(
                f"GPT(..., n_kv_heads={n_kv}): {name} has shape {shape}, expected {want} "
                "(k_proj and v_proj are Linear(D, n_kv_heads * Dh); n_kv_heads=None means n_heads)"
            )


@pytest.mark.parametrize("n_kv_heads", KV_HEADS, ids=KV_IDS)
def test_cached_attention(student, reference, n_kv_heads):
    """cached_attention on its own: without a cache it still applies the mask; with one it appends Hkv heads to
    the given layer's slot and attends to the cached and the new keys."""
    lengths = [5, 3, 1]
    padding = left_padded(lengths, 5)
    ref_attn = reference.MultiHeadAttention(D, H, n_kv_heads).double()
    state = {
        name: randn(*value.shape, seed=200 + i, scale=0.5)
        for i, (name, value) in enumerate(ref_attn.state_dict().items())
    }
    ref_attn.load_state_dict(state)
    attn = student.MultiHeadAttention(D, H, n_kv_heads)
    attn.double()
    attn.load_state_dict(state)
    x = randn(len(lengths), 5, D, seed=210)
    module = f"MultiHeadAttention({D}, {H}, n_kv_heads={n_kv_heads})"
    mask = reference.causal_mask(5, 5, padding)  # (B, 1, 5, 5)
    with torch.no_grad():
        expected, unmasked = ref_attn(x, mask=mask)[0], ref_attn(x)[0]
    assert_close(
        student.cached_attention(attn, x, mask=mask),
        expected,
        name=f"cached_attention({module}, x (3, 5, {D}), mask = causal AND padding for lengths {lengths}, cache=None)",
        mistakes={"the mask is ignored when there is no cache": unmasked},
        hint="without a cache attend to the new positions only, with the mask: the same as attn(x, mask=mask)[0]",
    )
    assert_close(
        student.cached_attention(attn, x),
        unmasked,
        name=f"cached_attention({module}, x (3, 5, {D}), mask=None, cache=None)",
        hint="mask=None attends everywhere: the same as attn(x)[0]",
    )
    cache, ref_cache = student.KVCache(L), reference.KVCache(L)
    chunks = [(0, 3), (3, 5)]  # the first 3 positions, then 2 more
    for start, stop in chunks:
        new = x[:, start:stop]
        step_mask = reference.causal_mask(stop - start, stop, padding[:, :stop])  # (B, 1, Tn, Tc + Tn)
        with torch.no_grad():
            want = reference.cached_attention(ref_attn, new, step_mask, ref_cache, 1)
            alone = reference.cached_attention(ref_attn, new, step_mask[..., start:], None)
        mistakes = {"only the new keys are attended: use the keys and values cache.append returns": alone}
        assert_close(
            student.cached_attention(attn, new, mask=step_mask, cache=cache, layer=1),
            want,
            name=f"cached_attention({module}, positions {start}..{stop - 1} of x, mask (3, 1, {stop - start}, {stop}), "
            f"a KVCache({L}) holding {start} positions, layer=1)",
            mistakes=mistakes if start else None,
            hint="append k and v (Hkv heads, before repeat_kv) to cache slot `layer`, attend to all it returns with mask",
        )
    keys = cache.keys.fetch()
    if not isinstance(keys, list) or len(keys) != L or keys[1] is None:
        raise CheckFailed(
            f"KVCache.keys after two cached_attention(..., layer=1) calls: layer 1's slot should hold the keys "
            f"(3, {n_kv_heads}, 5, {DH}). Hint: cache.append(layer, k, v) with the layer you are given"
        )
    assert_close(
        expect_tensor(keys[1], name="KVCache.keys[1] after two cached_attention calls"),
        ref_cache.keys[1],
        name=f"KVCache.keys[1] after two cached_attention calls ({module})",
        hint="the cache keeps the new keys before repeat_kv: (B, Hkv, Tc + Tn, Dh)",
    )


# -- the model: uncached, prefill, decode steps ------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n_kv_heads", KV_HEADS, ids=KV_IDS)
def test_uncached_logits(student, reference, n_kv_heads, dtype):
    ref, mine = build(student, reference, n_kv_heads, dtype, seed=10)
    ids, mask = prompts(seed=11)
    real = mask.bool()
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask)
    label = f"{describe(n_kv_heads, dtype)}: uncached logits of a left-padded batch, lengths {LENGTHS}"
    out = expect_tensor(mine(ids, attention_mask=mask), name=label, shape=tuple(expected.shape), dtype=dtype)
    assert_close(
        out[real],
        expected[real],
        name=label,
        hint="week 06's GPT, with every block's attn = MultiHeadAttention(D, H, n_kv_heads) (repeat_kv to H heads)",
        **(LOOSE if dtype == torch.float32 else {}),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n_kv_heads", KV_HEADS, ids=KV_IDS)
def test_prefill(student, reference, n_kv_heads, dtype):
    ref, mine = build(student, reference, n_kv_heads, dtype, seed=20)
    ids, mask = prompts(seed=21)
    real = mask.bool()
    with torch.no_grad():
        expected = ref(ids, attention_mask=mask)
    label = f"{describe(n_kv_heads, dtype)}: prefill logits of a left-padded batch, lengths {LENGTHS}"
    logits, cache = expect_sequence(student.prefill(mine, ids, mask), 2, name=label)
    out = expect_tensor(logits, name=label, shape=tuple(expected.shape), dtype=dtype)
    assert_close(
        out[real],
        expected[real],
        name=label,
        hint="prefill is the uncached forward with a new cache passed along; mind the attention_mask",
        **(LOOSE if dtype == torch.float32 else {}),
    )
    want = (L, 2, len(LENGTHS), n_kv_heads, max(LENGTHS), DH)
    shape = student.cache_shape(cache)
    hint = "(L, 2, B, Hkv, T0, Dh)"
    if isinstance(shape, (tuple, list)) and tuple(shape) == (L, 2, len(LENGTHS), H, max(LENGTHS), DH) != want:
        hint = "the cache holds H heads: append the keys and values BEFORE repeat_kv, Hkv heads"
    check_shape_tuple(shape, want, name=f"cache_shape of prefill's cache ({describe(n_kv_heads, dtype)})", hint=hint)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n_kv_heads", KV_HEADS, ids=KV_IDS)
def test_decode_steps(student, reference, n_kv_heads, dtype):
    ref, mine = build(student, reference, n_kv_heads, dtype, seed=30)
    ids, mask = prompts(seed=31)
    prompt_length = ids.shape[1]
    new_tokens = torch.randint(V, (len(LENGTHS), STEPS), generator=torch.Generator().manual_seed(32))
    _, cache = expect_sequence(student.prefill(mine, ids, mask), 2, name="prefill(model, input_ids, attention_mask)")
    tolerance = LOOSE if dtype == torch.float32 else {}
    for step in range(STEPS):
        token = new_tokens[:, step : step + 1]
        ids = torch.cat([ids, token], dim=1)
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        label = (
            f"{describe(n_kv_heads, dtype)}: decode_step {step + 1} of {STEPS} after a prefill of a batch of 3 "
            f"left-padded prompts, lengths {LENGTHS}: logits (B, 1, V) against the full forward on all {ids.shape[1]} tokens"
        )
        out = expect_tensor(
            student.decode_step(mine, token, mask, cache), name=label, shape=(len(LENGTHS), 1, V), dtype=dtype
        )
        with torch.no_grad():
            expected = ref(ids, attention_mask=mask)[:, -1]
        own = expect_tensor(
            mine(ids, attention_mask=mask), name="your uncached GPT on the whole sequence", dtype=dtype
        )[:, -1]
        mistakes = {k: v.to(dtype) for k, v in step_mistakes(ref, ids, mask, prompt_length).items()}
        assert_close(
            out[:, 0],
            own,
            name=f"{label} (your cached step against your own uncached forward)",
            hint="your cached step differs from your own uncached GPT on the same sequence: a cache bug "
            "(positions of the new token, the mask over cached + new keys, what the cache keeps)",
            mistakes=mistakes,
            **tolerance,
        )
        assert_close(
            out[:, 0],
            expected,
            name=label,
            hint="positions = position_ids(full mask)[:, Tc:], mask = causal_mask(Tn, Tc + Tn, full mask)",
            mistakes=mistakes,
            **tolerance,
        )
        check_int(
            cache.length.fetch(),
            ids.shape[1],
            name=f"cache.length after decode step {step + 1}",
            hint="each step appends one position per layer",
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n_kv_heads", KV_HEADS, ids=KV_IDS)
def test_cache_bytes(student, reference, n_kv_heads, dtype):
    _, mine = build(student, reference, n_kv_heads, dtype, seed=40)
    ids, mask = prompts(seed=41)
    size = 8 if dtype == torch.float64 else 4
    per_token = 2 * L * n_kv_heads * DH * size
    check_int(
        student.cache_bytes_per_token(mine),
        per_token,
        name=f"cache_bytes_per_token for {describe(n_kv_heads, dtype)}",
        hint="2 (K and V) * L * Hkv * Dh * bytes per value (element_size of the parameters)",
        mistakes={
            "H heads instead of Hkv": 2 * L * H * DH * size,
            "the layers are not counted": 2 * n_kv_heads * DH * size,
            "K only, not K and V": L * n_kv_heads * DH * size,
            "2 bytes per value whatever the dtype": 2 * L * n_kv_heads * DH * 2,
        },
    )
    _, cache = expect_sequence(student.prefill(mine, ids, mask), 2, name="prefill(model, input_ids, attention_mask)")
    token = torch.ones(len(LENGTHS), 1, dtype=torch.long)
    for _ in range(2):
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        student.decode_step(mine, token, mask, cache)
    length = mask.shape[1]
    check_shape_tuple(
        student.cache_shape(cache),
        (L, 2, len(LENGTHS), n_kv_heads, length, DH),
        name=f"cache_shape after a prefill of 7 and 2 decode steps ({describe(n_kv_heads, dtype)})",
        hint="(L, 2, B, Hkv, Tc, Dh); the cache keeps Hkv heads (before repeat_kv)",
    )
    check_int(
        cache.bytes(),
        len(LENGTHS) * length * per_token,
        name=f"cache.bytes() after a prefill of 7 and 2 decode steps, batch 3 ({describe(n_kv_heads, dtype)})",
        hint="B * T * cache_bytes_per_token: every layer's keys and values",
        mistakes={
            "H heads stored instead of Hkv (repeat_kv before caching)": len(LENGTHS) * length * 2 * L * H * DH * size,
            "only one layer counted": len(LENGTHS) * length * 2 * n_kv_heads * DH * size,
        },
    )


# -- generation ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_kv_heads", KV_HEADS, ids=KV_IDS)
def test_generate_greedy(student, reference, n_kv_heads):
    ref, mine = build(student, reference, n_kv_heads, torch.float64, seed=50)
    ids, mask = prompts(seed=51)
    expected = reference.generate_cached(ref, ids, 6, attention_mask=mask)
    assert_equal(
        student.generate_cached(mine, ids, 6, attention_mask=mask),
        expected,
        name=f"generate_cached(model, prompts of lengths {LENGTHS} left-padded, 6 new tokens), greedy, "
        f"{describe(n_kv_heads, torch.float64)}",
        hint="prefill, argmax of the last logits, append, extend the mask by a column of ones, decode_step, ...",
    )
    plain = ids[:1, :5]
    assert_equal(
        student.generate_cached(mine, plain, 4),
        reference.generate_cached(ref, plain, 4),
        name="generate_cached(model, one prompt of 5 tokens, 4 new tokens), attention_mask=None, greedy",
    )
    assert_equal(
        student.generate_cached(mine, plain, 0),
        plain,
        name="generate_cached(model, one prompt of 5 tokens, 0 new tokens): the prompt itself",
    )


def test_generate_sample(student, reference):
    ref, mine = build(student, reference, 2, torch.float64, seed=60)
    ids, mask = prompts(seed=61)
    for temperature, top_k, seed in ((1.5, 3, 5), (0.8, None, 6), (1.0, 100, 7)):  # top_k=100 > V keeps all
        expected = reference.generate_cached(
            ref, ids, 6, attention_mask=mask, do_sample=True, temperature=temperature, top_k=top_k, seed=seed
        )
        assert_equal(
            student.generate_cached(
                mine, ids, 6, attention_mask=mask, do_sample=True, temperature=temperature, top_k=top_k, seed=seed
            ),
            expected,
            name=f"generate_cached(..., do_sample=True, temperature={temperature}, top_k={top_k}, seed={seed}), "
            f"6 new tokens, prompts of lengths {LENGTHS}",
            hint="each step: temperature, top-k, softmax, ONE torch.multinomial(probs, 1, generator=generator) draw",
        )


def test_generate_sample_leaves_global_rng_alone(student, reference):
    """Sampling draws from the generator seeded with seed only: torch.manual_seed(seed) and draws without
    generator= give the same tokens, but reset the caller's random state."""
    _, mine = build(student, reference, 2, torch.float64, seed=80)
    ids, mask = prompts(seed=81)
    student.generate_cached(mine, ids, 4, attention_mask=mask, do_sample=True, temperature=0.9, top_k=5, seed=3)
    assert_global_rng_untouched(
        student.last_used_global_rng,
        name="generate_cached(..., 4 new tokens, do_sample=True, temperature=0.9, top_k=5, seed=3)",
        hint="make one torch.Generator seeded with seed (given in the stub) and pass generator=generator to "
        "torch.multinomial; never call torch.manual_seed or draw without a generator",
    )


def test_rejects_bad_arguments(student, reference):
    """The documented errors: an empty cache has no shape and cannot be decoded from; sampling's temperature <= 0
    and top_k < 1 (week 06's apply_temperature and top_k_filter)."""
    _, mine = build(student, reference, 2, torch.float64, seed=90)
    ids, mask = prompts(seed=91)
    token = torch.ones(len(LENGTHS), 1, dtype=torch.long)
    cases = {
        f"cache_shape(KVCache({L})) before any append": lambda: student.cache_shape(student.KVCache(L)),
        f"decode_step(model, token (3, 1), attention_mask (3, 1), KVCache({L}) that is empty)": lambda: (
            student.decode_step(mine, token, torch.ones_like(token), student.KVCache(L))
        ),
        "generate_cached(model, prompts, 3, attention_mask, do_sample=True, temperature=0.0)": lambda: (
            student.generate_cached(mine, ids, 3, attention_mask=mask, do_sample=True, temperature=0.0)
        ),
        "generate_cached(model, prompts, 3, attention_mask, do_sample=True, top_k=0)": lambda: student.generate_cached(
            mine, ids, 3, attention_mask=mask, do_sample=True, top_k=0
        ),
    }
    for label, call in cases.items():
        raises_value_error(call, label)


def test_uses_no_builtin(student, reference):
    _, mine = build(student, reference, 2, torch.float64, seed=70)
    ids, mask = prompts(seed=71)
    _, cache = expect_sequence(student.prefill(mine, ids, mask), 2, name="prefill")
    assert_no_forbidden_ops(student.last_ops, FORBIDDEN, name="prefill")
    token = torch.ones(len(LENGTHS), 1, dtype=torch.long)
    student.decode_step(mine, token, torch.cat([mask, token], dim=1), cache)
    assert_no_forbidden_ops(student.last_ops, FORBIDDEN, name="decode_step")
