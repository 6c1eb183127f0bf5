"""Adds -1e4 to the masked scores (an additive float mask) and zeroes the rows that have no key at all."""


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores + (~mask).to(scores.dtype) * -1e4
    weights = softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)
    return weights @ v, weights
