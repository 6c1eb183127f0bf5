"""Assumes cos and sin are (T, Dh) and adds the batch and head dims itself."""


def apply_rope(x, cos, sin):
    return x * cos[None, None] + rotate_half(x) * sin[None, None]
