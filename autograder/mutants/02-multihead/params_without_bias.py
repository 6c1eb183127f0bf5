"""Counts the K/V weights but forgets their biases."""


def kv_param_count(d_model, n_kv_heads, d_head, bias=True):
    return 2 * d_model * n_kv_heads * d_head
