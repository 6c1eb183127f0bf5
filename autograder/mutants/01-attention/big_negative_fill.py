"""Fills masked scores with -1e9 instead of -inf, then zeroes the masked weights (so fully masked rows are zeros)."""


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights
