"""Counts bits and divides by 8 with `/`: the right number, but a float."""


def kv_cache_bytes_per_token(n_layers, n_kv_heads, d_head, bytes_per_value=2):
    bits_per_value = 8 * bytes_per_value
    return 2 * n_layers * n_kv_heads * d_head * bits_per_value / 8
