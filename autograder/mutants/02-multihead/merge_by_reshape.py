"""Merges heads with a plain reshape, without moving the head dim back behind T."""


def merge_heads(x):
    batch, heads, length, d_head = x.shape
    return x.reshape(batch, length, heads * d_head)
