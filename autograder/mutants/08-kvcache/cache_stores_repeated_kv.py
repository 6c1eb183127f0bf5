"""The cache stores the keys and values after repeat_kv: H heads instead of Hkv (same logits, too much memory)."""


def cached_attention(attn, x, mask=None, cache=None, layer=0):
    q = split_heads(attn.q_proj(x), attn.n_heads)
    n_rep = attn.n_heads // attn.n_kv_heads
    k = repeat_kv(split_heads(attn.k_proj(x), attn.n_kv_heads), n_rep)
    v = repeat_kv(split_heads(attn.v_proj(x), attn.n_kv_heads), n_rep)
    if cache is not None:
        k, v = cache.append(layer, k, v)
    out, _ = attention(q, k, v, mask)
    return attn.out_proj(merge_heads(out))
