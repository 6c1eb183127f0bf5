"""cached_attention applies the mask only when it has a cache: the uncached forward attends to the future and to padding."""

REPLACE = [
    (
        "    out, _ = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)  # (B, H, Tn, Dh)",
        "    out, _ = attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask if cache is not None else None)",
    ),
]
