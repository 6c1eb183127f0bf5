"""Transposes its input in place (x.transpose_), so the caller's tensor changes shape."""


def merge_heads(x):
    batch, heads, length, d_head = x.shape
    return x.transpose_(1, 2).reshape(batch, length, heads * d_head)
