"""Counts the bias as a float factor (1.0 or 0.0): the right number, but a float."""


def kv_param_count(d_model, n_kv_heads, d_head, bias=True):
    return 2 * n_kv_heads * d_head * (d_model + (1.0 if bias else 0.0))
