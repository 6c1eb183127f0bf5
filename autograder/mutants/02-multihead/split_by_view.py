"""Splits heads with a plain view to (B, H, T, Dh), mixing positions and heads."""


def split_heads(x, n_heads):
    batch, length, width = x.shape
    return x.reshape(batch, n_heads, length, width // n_heads)
