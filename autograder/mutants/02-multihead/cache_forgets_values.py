"""Counts only the keys in the cache (forgets that values are cached too)."""


def kv_cache_bytes_per_token(n_layers, n_kv_heads, d_head, bytes_per_value=2):
    return n_layers * n_kv_heads * d_head * bytes_per_value
