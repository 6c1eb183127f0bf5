"""Reshapes the caller's slopes in place (unsqueeze_) to broadcast them over (Tq, Tk)."""


def alibi_bias(slopes, q_len, k_len):
    query_positions = torch.arange(q_len, dtype=slopes.dtype) + (k_len - q_len)
    key_positions = torch.arange(k_len, dtype=slopes.dtype)
    distance = (query_positions[:, None] - key_positions[None, :]).abs()
    return -slopes.unsqueeze_(-1).unsqueeze_(-1) * distance
