"""Adds +slope × distance: far tokens get more attention instead of less."""


def alibi_bias(slopes, q_len, k_len):
    query = torch.arange(q_len, dtype=slopes.dtype) + (k_len - q_len)
    key = torch.arange(k_len, dtype=slopes.dtype)
    return slopes[:, None, None] * (query[:, None] - key[None, :]).abs()
