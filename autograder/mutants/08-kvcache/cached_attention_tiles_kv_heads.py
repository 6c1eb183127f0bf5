"""cached_attention tiles the key/value heads (k.repeat(1, n_rep, 1, 1)) instead of week 02's repeat_kv: query head h
reads kv head h % Hkv, not h // n_rep."""

REPLACE = [
    (
        "    out, _ = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)  # (B, H, Tn, Dh)",
        "    out, _ = attention(q, k.repeat(1, n_rep, 1, 1), v.repeat(1, n_rep, 1, 1), mask)",
    ),
]
