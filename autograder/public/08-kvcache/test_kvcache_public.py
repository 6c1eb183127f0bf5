"""Public tests for week 08: run them with `course check 08`.

They check your cache against your own uncached GPT (every cached step must give the
logits of the full forward on the whole sequence), the cache's shape and size against
the formula 2 * L * Hkv * Dh * bytes per value, and generate_cached against a plain
greedy loop over your own uncached model. The hidden tests check more (the reference
model's logits, MHA, GQA and MQA, float32, more steps, sampling with a seed, the
known mistakes by name).
"""

import torch

from autograder import assert_close, assert_equal

V, MAX_LEN, D, H, L, F = 40, 20, 24, 4, 2, 32


def rand(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def make_model(student, n_kv_heads):
    model = student.GPT(V, MAX_LEN, D, H, L, d_ff=F, dropout=0.1, n_kv_heads=n_kv_heads)
    model.double()
    state = {}
    for i, (name, value) in enumerate(model.state_dict().items()):
        is_norm_weight = "norm" in name and name.endswith("weight")
        state[name] = rand(*value.shape, seed=i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
    model.load_state_dict(state)
    model.train(False)  # eval mode: dropout off
    return model


def padded_batch(lengths, seed=0):
    length = max(lengths)
    mask = (torch.arange(length)[None, :] >= length - torch.tensor(lengths)[:, None]).long()
    ids = torch.randint(V, mask.shape, generator=torch.Generator().manual_seed(seed)).masked_fill(mask == 0, 0)
    return ids, mask


def test_cache_append_concatenates_in_time(student):
    cache = student.KVCache(1)
    first, second = rand(2, 3, 4, 5, seed=1), rand(2, 3, 1, 5, seed=2)
    cache.append(0, first, first + 1)
    keys, values = cache.append(0, second, second + 1)
    assert_close(keys, torch.cat([first, second], dim=2), name="keys after two appends")
    assert_close(values, torch.cat([first, second], dim=2) + 1, name="values after two appends")
    assert cache.length.fetch() == 5, "KVCache.length should be 5 after appending 4 and then 1 positions"


def test_cached_steps_match_own_uncached_model(student):
    for n_kv_heads in (4, 2, 1):
        model = make_model(student, n_kv_heads)
        ids, mask = padded_batch([6, 3], seed=3)
        logits, cache = student.prefill(model, ids, mask)
        real = mask.bool()
        assert_close(
            logits[real], model(ids, attention_mask=mask)[real], name=f"prefill logits, n_kv_heads={n_kv_heads}"
        )
        for step in range(3):
            token = torch.randint(V, (2, 1), generator=torch.Generator().manual_seed(10 + step))
            ids = torch.cat([ids, token], dim=1)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            out = student.decode_step(model, token, mask, cache)
            full = model(ids, attention_mask=mask)[:, -1:]
            assert_close(out, full, name=f"decode step {step + 1}, n_kv_heads={n_kv_heads}, against your uncached GPT")
        expected = (L, 2, 2, n_kv_heads, ids.shape[1], D // H)
        assert tuple(student.cache_shape(cache)) == expected, f"cache_shape should be {expected} (L, 2, B, Hkv, T, Dh)"
        per_token = 2 * L * n_kv_heads * (D // H) * 8
        assert student.cache_bytes_per_token(model) == per_token, f"cache_bytes_per_token should be {per_token}"
        assert cache.bytes() == 2 * ids.shape[1] * per_token, "cache.bytes() should be B * T * bytes per token"


def test_generate_cached_matches_a_plain_greedy_loop(student):
    model = make_model(student, 2)
    ids, mask = padded_batch([5, 2, 4], seed=4)
    expected, running = ids, mask
    for _ in range(5):
        chosen = model(expected, attention_mask=running)[:, -1].argmax(-1, keepdim=True)
        expected = torch.cat([expected, chosen], dim=1)
        running = torch.cat([running, torch.ones_like(chosen)], dim=1)
    assert_equal(student.generate_cached(model, ids, 5, attention_mask=mask), expected, name="generate_cached, greedy")
