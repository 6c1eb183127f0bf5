"""Tiles the key/value heads (repeat) instead of repeating each in a row (repeat_interleave)."""


def repeat_kv(x, n_rep):
    return x.repeat(1, n_rep, 1, 1)
