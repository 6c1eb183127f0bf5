"""Places the queries at positions 0…Tq-1 instead of the last Tq positions."""


def alibi_bias(slopes, q_len, k_len):
    query = torch.arange(q_len, dtype=slopes.dtype)
    key = torch.arange(k_len, dtype=slopes.dtype)
    return -slopes[:, None, None] * (query[:, None] - key[None, :]).abs()
