"""Scales the queries in place (q /= sqrt(d)) before the matmul: the caller's q is changed."""


def scaled_dot_product_attention(q, k, v, mask=None):
    q = q.div_(math.sqrt(q.size(-1)))
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = softmax(scores, dim=-1)
    return weights @ v, weights
